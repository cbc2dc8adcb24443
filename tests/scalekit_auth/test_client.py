"""scalekit_auth.client's plain HTTPS helpers and the token_requested signal, on the emulator."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import certifi
import jwt
import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from scalekit.common.exceptions import ScalekitException

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


@pytest.fixture
def clean_trust(monkeypatch, tmp_path):
    """The process's trust variables as a fresh process has them (restored afterwards); combined
    bundles are written under ``tmp_path``."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(client, "_trusted", {}, raising=False)
    return monkeypatch


@pytest.fixture
def other_https_service(tmp_path):
    """Another HTTPS service with a CA of its own (an emulator with its own state_dir), standing
    for the services the project reached before CA_BUNDLE was set."""
    from scalekit_auth.emulator.server import Emulator

    service = Emulator(port=0, state_dir=tmp_path / "other").start()
    try:
        yield service
    finally:
        service.stop()


class TestTrustCaBundle:
    def test_adds_the_ca_to_the_bundle_the_process_trusted(
        self, emulator, other_https_service, clean_trust
    ):
        """CA_BUNDLE is an extra CA: HTTPS calls that verified before still verify."""
        clean_trust.setenv("REQUESTS_CA_BUNDLE", str(other_https_service.ca_path))
        client.trust_ca_bundle(str(emulator.ca_path))

        bundle = os.environ["REQUESTS_CA_BUNDLE"]
        assert bundle != str(emulator.ca_path)
        assert requests.get(other_https_service.url + "/keys", timeout=5).status_code == 200
        assert requests.get(emulator.url + "/keys", timeout=5).status_code == 200

    def test_without_a_bundle_set_certifis_is_the_base(self, emulator, clean_trust):
        client.trust_ca_bundle(str(emulator.ca_path))

        public = Path(certifi.where()).read_bytes().rstrip(b"\n")
        for name in ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"):
            content = Path(os.environ[name]).read_bytes()
            assert content.startswith(public), name
            assert emulator.ca_path.read_bytes().strip() in content, name
        directory = Path(os.environ["REQUESTS_CA_BUNDLE"]).parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700

    def test_building_again_or_with_another_ca_does_not_pile_up(
        self, emulator, other_https_service, clean_trust
    ):
        client.trust_ca_bundle(str(emulator.ca_path))
        first = os.environ["REQUESTS_CA_BUNDLE"]
        client.trust_ca_bundle(str(emulator.ca_path))
        assert os.environ["REQUESTS_CA_BUNDLE"] == first

        client.trust_ca_bundle(str(other_https_service.ca_path))
        content = Path(os.environ["REQUESTS_CA_BUNDLE"]).read_bytes()
        assert content.startswith(Path(certifi.where()).read_bytes().rstrip(b"\n"))
        assert other_https_service.ca_path.read_bytes().strip() in content
        assert emulator.ca_path.read_bytes().strip() not in content  # certifi's + the new CA

    def test_a_bundle_that_already_holds_the_ca_is_kept(self, emulator, clean_trust):
        clean_trust.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
        client.trust_ca_bundle(str(emulator.ca_path))
        assert os.environ["REQUESTS_CA_BUNDLE"] == str(emulator.ca_path)

    def test_a_file_without_a_certificate_is_refused(self, tmp_path, clean_trust):
        not_pem = tmp_path / "ca.pem"
        not_pem.write_text("SCALEKIT_CA_BUNDLE=oops\n")
        with pytest.raises(ImproperlyConfigured, match=r"CA_BUNDLE'\] points to .* no PEM"):
            client.trust_ca_bundle(str(not_pem))
        assert "REQUESTS_CA_BUNDLE" not in os.environ


class TestDescribeError:
    """A TLS verification failure names itself and the setting to fix (the SDK only says
    ScalekitException)."""

    def test_an_untrusted_emulator_certificate(self, auth_emulator, settings, clean_trust):
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CA_BUNDLE": ""}
        with pytest.raises(ScalekitException) as excinfo:
            client.get_client()
        described = client.describe_error(excinfo.value)
        assert described == (
            f"TLS certificate verification failed (CERTIFICATE_VERIFY_FAILED) for "
            f"{auth_emulator.url}: for the emulator, set SCALEKIT_AUTH['CA_BUNDLE'] to its "
            "ca.pem [unable to get local issuer certificate]"
        )
        assert client.describe_client_error(excinfo.value).startswith(
            "the Scalekit client could not be built (ScalekitException): TLS certificate "
            "verification failed"
        )

    def test_a_ca_bundle_without_the_right_ca(self, auth_emulator, settings, clean_trust):
        wrong = certifi.where()
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CA_BUNDLE": wrong}
        with pytest.raises(ScalekitException) as excinfo:
            client.get_client()
        described = client.describe_error(excinfo.value)
        assert "SCALEKIT_AUTH['CA_BUNDLE'] does not hold the CA that signed" in described
        assert f"CA_BUNDLE is {wrong})" in described

    def test_other_failures_name_no_certificate(self, auth_emulator, settings):
        settings.SCALEKIT_AUTH = {
            **settings.SCALEKIT_AUTH,
            "ENVIRONMENT_URL": "https://127.0.0.1:9",
            "CLIENT_SECRET": "s3cr3t-value",
        }
        with pytest.raises(ScalekitException) as excinfo:
            client.get_client()
        described = client.describe_client_error(excinfo.value)
        assert described == (
            "the Scalekit client could not be built (ScalekitException): could not connect to "
            "https://127.0.0.1:9 (ScalekitException)"
        )
