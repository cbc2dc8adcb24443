"""Kind N probes against the Scalekit emulator (over its real TLS port) and a live Django server."""

from __future__ import annotations

import pytest
from django.test import override_settings

from readiness.registry import FAIL, PASS, SKIP, WARN, ProbeContext

from .helpers import covers, run_probe
from .servers import django_server, https_server

pytestmark = pytest.mark.django_db


def with_scalekit(settings_dict: dict, **changes) -> override_settings:
    return override_settings(SCALEKIT_AUTH={**settings_dict, **changes})


class TestScalekitReachable:
    @covers("readiness.E054", PASS)
    @covers("readiness.E055", PASS)
    @covers("readiness.E056", PASS)
    def test_against_the_emulator(self, scalekit_settings, fresh_emulator):
        ctx = ProbeContext()
        discovery = run_probe("readiness.E054", ctx=ctx)
        jwks = run_probe("readiness.E055", ctx=ctx)
        token = run_probe("readiness.E056", ctx=ctx)
        assert discovery.status == PASS, discovery.message
        assert discovery.evidence["issuer"] == fresh_emulator.url
        assert discovery.evidence["latency_ms"] > 0
        assert jwks.status == PASS, jwks.message
        assert jwks.evidence["kids"] and all(k.startswith("snk_") for k in jwks.evidence["kids"])
        assert token.status == PASS, token.message
        assert token.evidence["kid"] in jwks.evidence["kids"]
        secret = scalekit_settings["CLIENT_SECRET"]
        assert secret not in repr((discovery, jwks, token))

    @covers("readiness.E056", FAIL)
    def test_wrong_secret_refused(self, scalekit_settings):
        with with_scalekit(scalekit_settings, CLIENT_SECRET="not-the-secret"):
            result = run_probe("readiness.E056")
        assert result.status == FAIL
        assert "refused the configured client id and secret (401)" in result.message
        assert "not-the-secret" not in repr(result)

    @covers("readiness.E054", FAIL)
    def test_issuer_mismatch(self, scalekit_settings, fresh_emulator):
        aliased = fresh_emulator.url.replace("localhost", "127.0.0.1")
        with with_scalekit(scalekit_settings, ENVIRONMENT_URL=aliased):
            result = run_probe("readiness.E054")
        assert result.status == FAIL
        assert f"the issuer {fresh_emulator.url} differs from the environment URL" in (
            result.message[0].lower() + result.message[1:]
        )

    @covers("readiness.E055", FAIL)
    def test_unreachable(self, scalekit_settings, unused_port):
        with with_scalekit(scalekit_settings, ENVIRONMENT_URL=f"https://127.0.0.1:{unused_port}"):
            ctx = ProbeContext()
            results = [
                run_probe(pid, ctx=ctx)
                for pid in ("readiness.E054", "readiness.E055", "readiness.E056")
            ]
        assert [r.status for r in results] == [FAIL, FAIL, FAIL]
        assert "is unreachable: connection failed" in results[0].message
        assert results[1].message.startswith("The JWKS at https://127.0.0.1:")

    def test_untrusted_certificate(self, scalekit_settings, tmp_path):
        with (
            https_server(tmp_path, {}) as (url, _),
            with_scalekit(scalekit_settings, CA_BUNDLE="", ENVIRONMENT_URL=url.rstrip("/")),
        ):
            result = run_probe("readiness.E054")
        assert result.status == FAIL
        assert "TLS certificate not trusted" in result.message

    def test_secret_never_sent_over_http(self, scalekit_settings):
        """A plain-http environment URL gets no token request: the secret would cross in clear."""
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = []

        class Recorder(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_port}"
            with with_scalekit(scalekit_settings, ENVIRONMENT_URL=url):
                result = run_probe("readiness.E056")
        finally:
            server.shutdown()
            server.server_close()
        assert result.status == FAIL
        assert f"The environment URL {url} is not https" in result.message
        assert received == []

    def test_discovery_and_jwks_refuse_plain_http(self, scalekit_settings, recorder):
        """Every Scalekit request goes through scalekit_auth.client, which speaks https only."""
        url, received = recorder
        with with_scalekit(scalekit_settings, ENVIRONMENT_URL=url):
            ctx = ProbeContext()
            discovery = run_probe("readiness.E054", ctx=ctx)
            jwks = run_probe("readiness.E055", ctx=ctx)
        assert discovery.status == FAIL and jwks.status == FAIL
        assert f"SCALEKIT_AUTH['ENVIRONMENT_URL'] {url} is not an https URL" in discovery.message
        assert "is not an https URL" in jwks.message
        assert received == []

    def test_no_network(self, scalekit_settings):
        result = run_probe("readiness.E054", network=False)
        assert result.status == SKIP
        assert "--no-network" in result.message


@pytest.fixture
def recorder():
    """A plain-http server on 127.0.0.1 recording the paths it is asked for; yields (url, log)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

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
def unused_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestPublicSite:
    @covers("readiness.E057", PASS)
    def test_http_redirects_to_https(self):
        with (
            override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["localhost"]),
            django_server() as url,
            override_settings(READINESS={"PUBLIC_URL": url}),
        ):
            result = run_probe("readiness.E057")
        assert result.status == PASS, result.message
        assert result.evidence["hops"][0]["status"] == 301

    @covers("readiness.E057", FAIL)
    def test_http_served_plainly(self):
        with (
            override_settings(SECURE_SSL_REDIRECT=False, ALLOWED_HOSTS=["localhost"]),
            django_server() as url,
            override_settings(READINESS={"PUBLIC_URL": url}),
        ):
            result = run_probe("readiness.E057")
        assert result.status == FAIL
        assert "without redirecting to https" in result.message

    @covers("readiness.E057", FAIL)
    def test_redirect_to_another_host(self):
        """An https:// Location on another host is not "this site redirects to https"."""
        with (
            override_settings(
                SECURE_SSL_REDIRECT=True,
                SECURE_SSL_HOST="elsewhere.example",
                ALLOWED_HOSTS=["localhost"],
            ),
            django_server() as url,
            override_settings(READINESS={"PUBLIC_URL": url}),
        ):
            result = run_probe("readiness.E057")
        assert result.status == FAIL, result.message
        assert result.evidence["location"] == "https://elsewhere.example/"
        assert "off the public host localhost" in result.message

    @covers("readiness.E057", SKIP)
    @covers("readiness.W058", SKIP)
    def test_no_public_url(self):
        assert run_probe("readiness.E057").status == SKIP
        assert run_probe("readiness.W058").status == SKIP

    @covers("readiness.W058", PASS)
    def test_hsts_header(self, tmp_path, monkeypatch):
        headers = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
        with https_server(tmp_path, headers) as (url, cert):
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
            with override_settings(READINESS={"PUBLIC_URL": url}, SECURE_HSTS_SECONDS=31536000):
                result = run_probe("readiness.W058")
        assert result.status == PASS, result.message
        assert result.evidence["strict_transport_security"].startswith("max-age=31536000")

    @covers("readiness.W058", FAIL)
    def test_hsts_missing_or_short(self, tmp_path, monkeypatch):
        with https_server(tmp_path, {"Strict-Transport-Security": "max-age=600"}) as (url, cert):
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
            with override_settings(READINESS={"PUBLIC_URL": url}):
                short = run_probe("readiness.W058")
        with https_server(tmp_path, {}) as (url, cert):
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
            with override_settings(READINESS={"PUBLIC_URL": url}):
                missing = run_probe("readiness.W058")
        assert short.status == FAIL and "max-age is 600 s, under a year" in short.message
        assert missing.status == FAIL and "sends no Strict-Transport-Security" in missing.message

    @covers("readiness.W058", WARN)
    def test_hsts_rewritten_by_proxy(self, tmp_path, monkeypatch):
        headers = {"Strict-Transport-Security": "max-age=31536000"}
        with https_server(tmp_path, headers) as (url, cert):
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
            with override_settings(READINESS={"PUBLIC_URL": url}, SECURE_HSTS_SECONDS=63072000):
                result = run_probe("readiness.W058")
        assert result.status == WARN
        assert "something in front of Django rewrites it" in result.message
