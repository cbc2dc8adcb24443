"""scalekit_auth.client's plain HTTPS helpers and the token_requested signal, on the emulator."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured

from scalekit_auth import client
from scalekit_auth.signals import token_requested

from .conftest import add_user, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorder():
    """A plain-http server on 127.0.0.1 that records every request it gets; yields (url, log)."""
    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def exchanges():
    """The grant types token_request() announces while the test runs."""
    seen: list[str] = []

    def receiver(sender, grant_type, **kwargs):
        seen.append(grant_type)

    token_requested.connect(receiver, dispatch_uid="tests.test_client.exchanges")
    yield seen
    token_requested.disconnect(dispatch_uid="tests.test_client.exchanges")


class TestEnvironmentRequest:
    def test_reaches_the_emulator_with_its_ca(self, auth_emulator):
        response = client.environment_request("GET", "/.well-known/openid-configuration")
        assert response.status_code == 200
        assert response.json()["issuer"] == auth_emulator.url

    def test_refuses_a_non_https_environment_url(self, auth_emulator, settings, recorder):
        url, received = recorder
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "ENVIRONMENT_URL": url}
        with pytest.raises(
            ImproperlyConfigured, match=rf"ENVIRONMENT_URL'\] {url} is not an https"
        ):
            client.environment_request("GET", "/keys")
        with pytest.raises(ImproperlyConfigured, match="is not an https"):
            client.client_credentials_response()
        with pytest.raises(ImproperlyConfigured, match="is not an https"):
            client.fetch_jwks()
        assert received == []

    def test_refuses_an_empty_environment_url(self, auth_emulator, settings):
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "ENVIRONMENT_URL": ""}
        with pytest.raises(ImproperlyConfigured, match=r"ENVIRONMENT_URL'\] is empty"):
            client.environment_request("GET", "/keys")

    @pytest.mark.parametrize("path", ["keys", "//evil.example/keys", "https://evil.example/"])
    def test_takes_only_a_path_on_the_environment(self, auth_emulator, path):
        with pytest.raises(ValueError, match="takes a path starting with one '/'"):
            client.environment_request("GET", path)

    def test_does_not_follow_redirects(self, auth_emulator):
        """The emulator's logout answers with a redirect to our site; it is returned as is."""
        response = client.environment_request(
            "GET", "/oidc/logout?post_logout_redirect_uri=http://testserver/"
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "http://testserver/"
        assert response.history == []


class TestFetchJwks:
    def test_sees_a_key_rotation_at_once(self, auth_emulator):
        before = {key["kid"] for key in client.fetch_jwks()["keys"]}
        auth_emulator.control.rotate_keys(grace_seconds=0)
        after = {key["kid"] for key in client.fetch_jwks()["keys"]}
        assert before and after and after != before


class TestClientCredentialsResponse:
    def test_the_configured_credentials_get_a_verifiable_token(self, auth_emulator, caplog):
        secret = auth_emulator.client_secret
        with caplog.at_level(logging.DEBUG):
            response = client.client_credentials_response()
        assert response.status_code == 200
        token = response.json()["access_token"]
        kids = {key["kid"] for key in client.fetch_jwks()["keys"]}
        assert jwt.get_unverified_header(token)["kid"] in kids
        assert secret not in caplog.text

    def test_a_wrong_secret_is_refused(self, auth_emulator, settings):
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CLIENT_SECRET": "not-the-secret"}
        assert client.client_credentials_response().status_code == 401

    def test_missing_credentials_are_named(self, auth_emulator, settings):
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CLIENT_SECRET": ""}
        with pytest.raises(ImproperlyConfigured, match=r"set SCALEKIT_AUTH\['CLIENT_SECRET'\]"):
            client.client_credentials_response()


class TestTokenRequested:
    def test_sent_once_per_code_exchange(self, client, sdk, auth_emulator, exchanges):
        add_user(sdk, "ada@acme.example")
        response = login(client, auth_emulator, "ada@acme.example")
        assert response.status_code == 302
        assert exchanges == ["authorization_code"]

    def test_sent_for_a_rejected_code_too(self, auth_emulator, exchanges):
        from scalekit.common.exceptions import ScalekitException

        with pytest.raises(ScalekitException):
            client.token_request(
                {"grant_type": "authorization_code", "code": "nope", "redirect_uri": "https://x/"}
            )
        assert exchanges == ["authorization_code"]

    def test_a_form_without_grant_type_is_refused_before_anything_is_sent(
        self, auth_emulator, exchanges
    ):
        with pytest.raises(ValueError, match="needs a form with a grant_type"):
            client.token_request({"code": "x"})
        assert exchanges == []
