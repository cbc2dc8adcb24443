"""Kind P probes: in-process requests through the real middleware stack.

Passing cases run against scalekit_auth's real views (``urls_probe``); failing cases against
purpose-built flawed views mounted under the same names (``urls_bad``).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.signals import got_request_exception
from django.test import modify_settings

from readiness.registry import FAIL, PASS, SKIP, WARN

from .helpers import covers, production, run_probe

pytestmark = pytest.mark.django_db

GOOD = "tests.readiness.urls_probe"
BAD = "tests.readiness.urls_bad"
BARE = "tests.readiness.urls_bare"
CRASHING = "tests.readiness.urls_crashing"
REPORTS = {"PROTECTED_URLS": [("/reports/", "readiness.view_checkrun")]}


def probe_in(urlconf: str, probe_id: str, **overrides) -> object:
    with production(ROOT_URLCONF=urlconf, **overrides):
        return run_probe(probe_id)


class TestProxyHeader:
    @covers("readiness.E041", PASS)
    def test_header_makes_request_secure(self):
        result = probe_in(
            GOOD,
            "readiness.E041",
            READINESS={"BEHIND_TLS_PROXY": True},
            SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        )
        assert result.status == PASS

    @covers("readiness.E041", FAIL)
    def test_header_missing_behind_proxy(self):
        result = probe_in(GOOD, "readiness.E041", READINESS={"BEHIND_TLS_PROXY": True})
        assert result.status == FAIL
        assert "every request looks like http" in result.message

    @covers("readiness.E041", SKIP)
    def test_not_behind_proxy(self):
        assert probe_in(GOOD, "readiness.E041").status == SKIP


class TestCorsPreflight:
    @covers("readiness.E042", PASS)
    def test_no_allow_origin(self):
        result = probe_in(GOOD, "readiness.E042")
        assert result.status == PASS
        assert result.evidence["allow_origin"] is None

    @covers("readiness.E042", FAIL)
    @modify_settings(MIDDLEWARE={"append": "tests.readiness.middleware.OpenCorsMiddleware"})
    def test_origin_reflected(self):
        result = probe_in(GOOD, "readiness.E042")
        assert result.status == FAIL
        assert "got Access-Control-Allow-Origin: https://readiness-probe.invalid" in result.message


class TestCookiesOnTheWire:
    @covers("readiness.E043", PASS)
    def test_secure_httponly_lax(self):
        result = probe_in(GOOD, "readiness.E043")
        assert result.status == PASS
        assert all("secure" in c.lower() for c in result.evidence["set_cookie"])
        assert not any(
            len(c.split(";")[0]) > len("__Host-sessionid=…")
            for c in result.evidence["set_cookie"]
            if c.startswith("__Host")
        ), "cookie value shown"

    @covers("readiness.E043", FAIL)
    def test_insecure_cookies(self):
        result = probe_in(
            GOOD,
            "readiness.E043",
            SESSION_COOKIE_SECURE=False,
            CSRF_COOKIE_SAMESITE="Strict",
            SESSION_COOKIE_HTTPONLY=False,
        )
        assert result.status == FAIL
        assert "session cookie is sent without Secure" in result.message
        assert "readable by JavaScript" in result.message
        assert "CSRF cookie has SameSite=Strict" in result.message

    def test_leaves_no_session_behind(self):
        probe_in(GOOD, "readiness.E043")
        assert Session.objects.count() == 0


class TestLogin:
    @covers("readiness.E044", PASS)
    def test_real_login_sends_state_and_pkce(self):
        result = probe_in(GOOD, "readiness.E044")
        assert result.status == PASS, result.message
        assert result.evidence["state_length"] >= 32
        assert result.evidence["code_challenge_method"] == "S256"
        assert Session.objects.count() == 0

    @covers("readiness.E044", FAIL)
    def test_flawed_login(self):
        result = probe_in(BAD, "readiness.E044")
        assert result.status == FAIL
        assert "the state has 6 characters" in result.message.lower()
        assert (
            "redirect_uri https://elsewhere.example/cb differs from "
            "SCALEKIT_AUTH['REDIRECT_URI'] https://app.example.com/auth/callback/"
        ) in result.message
        assert "no S256 PKCE code_challenge" in result.message

    def test_login_not_installed(self):
        result = probe_in(BARE, "readiness.E044")
        assert result.status == FAIL
        assert result.message == "login view scalekit_auth:login is not installed."

    @covers("readiness.E048", PASS)
    def test_real_login_drops_offsite_next(self):
        result = probe_in(GOOD, "readiness.E048")
        assert result.status == PASS, result.message

    @covers("readiness.E048", FAIL)
    def test_flawed_login_keeps_offsite_next(self):
        result = probe_in(BAD, "readiness.E048")
        assert result.status == FAIL
        assert "stored next=https://evil.invalid" in result.message


class TestCallback:
    @covers("readiness.E045", PASS)
    def test_real_callback_rejects_forged_state(self):
        result = probe_in(GOOD, "readiness.E045")
        assert result.status == PASS, result.message
        assert result.evidence["exchange_calls"] == 0
        assert 400 <= result.evidence["status"] < 500

    @covers("readiness.E045", FAIL)
    def test_flawed_callback(self):
        result = probe_in(BAD, "readiness.E045")
        assert result.status == FAIL
        assert "left tokens in the session" in result.message
        assert "redirects to /" in result.message


class TestLogout:
    @covers("readiness.E046", PASS)
    def test_real_logout_clears_session(self):
        result = probe_in(GOOD, "readiness.E046")
        assert result.status == PASS, result.message
        assert Session.objects.count() == 0

    @covers("readiness.E046", FAIL)
    def test_flawed_logout(self):
        result = probe_in(BAD, "readiness.E046")
        assert result.status == FAIL
        assert "old session still exists after logout" in result.message
        assert "does not remove the session cookie" in result.message
        assert "redirects off-site to evil.invalid" in result.message


class TestProtectedPages:
    @covers("readiness.E047", PASS)
    def test_never_cached(self):
        result = probe_in(GOOD, "readiness.E047", READINESS=REPORTS)
        assert result.status == PASS, result.message
        assert "no-store" in result.evidence["/reports/"]["cache_control"]
        assert not get_user_model().objects.filter(username__startswith="readiness-probe").exists()

    @covers("readiness.E047", FAIL)
    def test_cacheable_page(self):
        result = probe_in(BAD, "readiness.E047", READINESS={"PROTECTED_URLS": ["/profile/"]})
        assert result.status == FAIL
        assert "/profile/ is cacheable" in result.message

    def test_logged_in_as_a_scalekit_caller(self):
        """/whoami/ reads request.scalekit: the probe's user has a Scalekit session."""
        result = probe_in(
            "config.urls", "readiness.E047", READINESS={"PROTECTED_URLS": ["/whoami/"]}
        )
        assert result.status == PASS, result.message
        assert result.evidence["/whoami/"]["status"] == 200

    def test_logged_in_plainly_without_the_scalekit_backend(self):
        result = probe_in(
            GOOD,
            "readiness.E047",
            READINESS=REPORTS,
            AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"],
        )
        assert result.status == PASS, result.message
        assert result.evidence["/reports/"]["status"] == 200

    def test_nothing_listed(self):
        result = probe_in(GOOD, "readiness.E047")
        assert result.status == FAIL
        assert "lists no page" in result.message

    @covers("readiness.E052", PASS)
    def test_permissions_enforced(self):
        result = probe_in(GOOD, "readiness.E052", READINESS=REPORTS)
        assert result.status == PASS, result.message
        assert result.evidence["/reports/"] == {"anonymous": 302, "without_permission": 403}

    @covers("readiness.E052", FAIL)
    def test_permissions_not_enforced(self):
        result = probe_in(
            BAD,
            "readiness.E052",
            READINESS={
                "PROTECTED_URLS": [("/public/", None), ("/members/", "readiness.view_checkrun")]
            },
        )
        assert result.status == FAIL
        assert "/public/ answered 200 to an anonymous request" in result.message
        assert "/members/ answered 200 to a user without readiness.view_checkrun" in result.message


POLICY = {"append": "tests.readiness.middleware.PolicyMiddleware"}
REPORT_ONLY = {"append": "tests.readiness.middleware.ReportOnlyPolicyMiddleware"}


class TestContentSecurityPolicy:
    @covers("readiness.W064", PASS)
    @modify_settings(MIDDLEWARE=POLICY)
    def test_login_and_protected_page_send_the_policy(self):
        result = probe_in(GOOD, "readiness.W064", READINESS=REPORTS)
        assert result.status == PASS, result.message
        assert result.evidence["the login page /auth/login/"]["csp"] == "default-src 'self'"
        assert result.evidence["the protected page /reports/"] == {
            "status": 200,
            "csp": "default-src 'self'",
            "csp_report_only": "",
        }
        assert not get_user_model().objects.filter(username__startswith="readiness-probe").exists()

    @covers("readiness.W064", FAIL)
    def test_policy_in_settings_that_nothing_sends(self):
        """SECURE_CSP on Django 5.2: the settings probe is satisfied, no page carries a header."""
        with production(ROOT_URLCONF=GOOD, READINESS=REPORTS):
            in_settings, on_the_wire = run_probe("readiness.W015"), run_probe("readiness.W064")
        assert in_settings.status == PASS
        assert on_the_wire.status == FAIL
        assert on_the_wire.message == (
            "The login page /auth/login/ sends no Content-Security-Policy header; "
            "the protected page /reports/ sends no Content-Security-Policy header."
        )
        assert "CSPMiddleware" in on_the_wire.hint

    @covers("readiness.W064", FAIL)
    @modify_settings(MIDDLEWARE=POLICY)
    def test_protected_page_exempt_from_the_policy(self):
        result = probe_in(BAD, "readiness.W064", READINESS={"PROTECTED_URLS": ["/no-csp/"]})
        assert result.status == FAIL
        assert result.message == (
            "The protected page /no-csp/ sends no Content-Security-Policy header."
        )
        assert result.evidence["the protected page /no-csp/"]["status"] == 200

    @covers("readiness.W064", WARN)
    @modify_settings(MIDDLEWARE=REPORT_ONLY)
    def test_report_only_policy(self):
        result = probe_in(GOOD, "readiness.W064", READINESS=REPORTS)
        assert result.status == WARN
        assert "sends only Content-Security-Policy-Report-Only" in result.message

    @modify_settings(MIDDLEWARE=POLICY)
    def test_login_page_only_when_no_protected_page_is_listed(self):
        result = probe_in(GOOD, "readiness.W064")
        assert result.status == PASS
        assert list(result.evidence) == ["the login page /auth/login/"]
        assert "lists no page to check as well" in result.message


class TestWebhook:
    @covers("readiness.E049", PASS)
    def test_real_webhook_rejects_unsigned(self):
        result = probe_in(GOOD, "readiness.E049")
        assert result.status == PASS, result.message
        assert result.evidence == {"unsigned": 401, "bad signature": 401}

    @covers("readiness.E049", FAIL)
    def test_flawed_webhook(self):
        result = probe_in(BAD, "readiness.E049")
        assert result.status == FAIL
        assert "The unsigned call got 403: is the view CSRF exempt?" in result.message

    def test_unconfigured_webhook(self):
        from .helpers import production_scalekit

        result = probe_in(
            GOOD, "readiness.E049", SCALEKIT_AUTH=production_scalekit(WEBHOOK_SECRET="")
        )
        assert result.status == FAIL
        assert "got 503, not 400/401" in result.message

    @covers("readiness.E050", PASS)
    def test_real_webhook_post_only(self):
        assert probe_in(GOOD, "readiness.E050").status == PASS

    @covers("readiness.E050", FAIL)
    def test_flawed_webhook_accepts_get(self):
        result = probe_in(BAD, "readiness.E050")
        assert result.status == FAIL
        assert "GET with 200" in result.message


class TestAdminPortal:
    @covers("readiness.E051", SKIP)
    def test_no_portal_view(self):
        assert probe_in(GOOD, "readiness.E051").status == SKIP

    @covers("readiness.E051", PASS)
    def test_portal_protected(self):
        result = probe_in(
            GOOD, "readiness.E051", READINESS={"ADMIN_PORTAL_URL_NAME": "portal_link"}
        )
        assert result.status == PASS, result.message

    @covers("readiness.E051", FAIL)
    def test_portal_leaks_link(self):
        result = probe_in(BAD, "readiness.E051", READINESS={"ADMIN_PORTAL_URL_NAME": "portal_link"})
        assert result.status == FAIL
        assert "anonymous request got 200" in result.message
        assert "received a portal link" in result.message


class TestErrorPages:
    @covers("readiness.E053", PASS)
    def test_plain_404(self):
        assert probe_in(GOOD, "readiness.E053").status == PASS

    @covers("readiness.E053", FAIL)
    def test_debug_404(self):
        result = probe_in(GOOD, "readiness.E053", DEBUG=True)
        assert result.status == FAIL
        assert "shows debug information" in result.message


def test_callback_spy_disconnects_and_leaves_the_sdk_alone():
    from scalekit.core import CoreClient

    from scalekit_auth.signals import token_requested

    original = CoreClient.authenticate
    probe_in(GOOD, "readiness.E045")
    assert CoreClient.authenticate is original
    assert not token_requested.has_listeners()


def test_callback_that_exchanges_a_forged_code_is_caught(scalekit_settings):
    """A callback that skips the state check and sends the code to Scalekit (the emulator)."""
    from django.test import override_settings

    with override_settings(
        ROOT_URLCONF="tests.readiness.urls_exchanging", ALLOWED_HOSTS=["localhost"]
    ):
        result = run_probe("readiness.E045")
    assert result.status == FAIL
    assert result.evidence["exchange_calls"] == 1
    assert "The code was exchanged although the state was forged" in result.message


def test_expected_errors_are_not_logged(caplog):
    """The 404s and 405s probes provoke on purpose stay out of the logs."""
    import logging

    with caplog.at_level(logging.WARNING):
        probe_in(GOOD, "readiness.E050")
        probe_in(GOOD, "readiness.E053")
        probe_in(GOOD, "readiness.E045")
    assert "Method Not Allowed" not in caplog.text and "Not Found" not in caplog.text
    assert "state_mismatch" not in caplog.text
    assert not logging.getLogger("django.request").filters


class TestLogoutThroughScalekit:
    def test_oidc_logout_with_https_post_logout_uri(self):
        result = probe_in("tests.readiness.urls_logout", "readiness.E046")
        assert result.status == PASS, result.message
        assert result.message.endswith("and ends the Scalekit session.")
        assert result.evidence["location_path"] == "/oidc/logout"

    def test_oidc_logout_with_http_post_logout_uri(self):
        result = probe_in("tests.readiness.urls_logout_http", "readiness.E046")
        assert result.status == FAIL
        assert "post_logout_redirect_uri http://app.example.com/ is not https" in result.message


CACHE_SESSIONS = {
    "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
    "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
}


def session_keys_in_cache() -> set[str]:
    from django.core.cache import caches

    cache = caches["default"]
    return {key for key in cache._cache if "django.contrib.sessions.cache" in key}


class TestSideEffects:
    """What request probes leave in the live process: nothing."""

    @pytest.mark.parametrize("probe_id", ["readiness.E047", "readiness.E052", "readiness.E046"])
    def test_no_session_left_in_a_cache_backed_store(self, probe_id):
        """The temporary superuser's rows are rolled back; its session must not outlive them."""
        with production(ROOT_URLCONF=GOOD, READINESS=REPORTS, **CACHE_SESSIONS):
            before = session_keys_in_cache()
            result = run_probe(probe_id)
            assert result.status == PASS, result.message
            assert session_keys_in_cache() == before

    def test_overlapping_exchange_spies_disconnect_at_the_end(self):
        """Two runs in two threads, interleaved: the receiver stays until the last one leaves."""
        import threading

        from readiness.probes.http_probes import _ExchangeSpy
        from scalekit_auth.signals import token_requested

        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
        seen = {}

        def first() -> None:
            with _ExchangeSpy().installed():
                a_in.set()
                b_in.wait(5)
            a_out.set()

        def second() -> None:
            a_in.wait(5)
            with _ExchangeSpy().installed() as spy:
                b_in.set()
                a_out.wait(5)
                seen["connected"] = token_requested.has_listeners()
                token_requested.send(sender=None, grant_type="authorization_code")
                seen["spy"] = spy

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert seen["connected"], "the second spy lost its receiver when the first one left"
        assert seen["spy"].calls == 1
        assert not token_requested.has_listeners()

    def test_spy_counts_only_its_own_thread(self):
        import threading

        from readiness.probes.http_probes import _ExchangeSpy
        from scalekit_auth.signals import token_requested

        def exchange() -> None:
            token_requested.send(sender=None, grant_type="authorization_code")

        with _ExchangeSpy().installed() as spy:
            exchange()
            other = threading.Thread(target=exchange)
            other.start()
            other.join()
            token_requested.send(sender=None, grant_type="refresh_token")
        assert spy.calls == 1

    def test_unconfigured_webhook_503s_are_not_logged_as_errors(self, caplog):
        from .helpers import production_scalekit

        with caplog.at_level("WARNING", logger="django.request"):
            result = probe_in(
                GOOD, "readiness.E049", SCALEKIT_AUTH=production_scalekit(WEBHOOK_SECRET="")
            )
        assert "got 503" in result.message
        assert not [r for r in caplog.records if r.name == "django.request"]


class TestServerErrors:
    """A view that crashes gives the probe a 500; the exception behind it is kept in the result,
    so that a 500 seen once can be diagnosed later."""

    def test_login_500_names_the_exception(self, caplog):
        from readiness.probes.http_probes import _ServerErrors

        with caplog.at_level("ERROR", logger="django.request"):
            result = probe_in(CRASHING, "readiness.E044")
        assert result.status == FAIL
        assert result.message.startswith("GET /auth/login/ answered 500, not a redirect")
        [error] = result.evidence["server_errors"]
        assert error.startswith(
            "GET /auth/login/ raised LookupError: no Scalekit client for secret"
        )
        assert error in result.message and "traceback in the log" in result.message
        assert any(r.exc_info for r in caplog.records if r.name == "django.request")
        uids = [key[0] for key, *_ in got_request_exception.receivers]
        assert _ServerErrors.DISPATCH_UID not in uids  # disconnected after the probe

    def test_secret_in_the_exception_is_masked(self):
        from .helpers import CLIENT_SECRET

        result = probe_in(CRASHING, "readiness.E044")
        text = " ".join([result.message, *result.evidence["server_errors"]])
        assert CLIENT_SECRET not in text
        assert f"sks_*** ({len(CLIENT_SECRET)} characters)" in text

    def test_a_good_view_leaves_no_server_errors(self):
        result = probe_in(GOOD, "readiness.E044")
        assert "server_errors" not in result.evidence
