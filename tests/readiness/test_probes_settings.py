"""Kind S probes: each passes on production-grade settings and fails on a purpose-built bad one."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import modify_settings, override_settings

from readiness.registry import FAIL, PASS, SKIP, WARN

from .helpers import HOST, covers, production, production_scalekit, run_probe

pytestmark = pytest.mark.django_db

# (probe id, expected outcome, settings overriding the production baseline, message fragment)
CASES = [
    ("readiness.E001", PASS, {}, "pins 1 host"),
    ("readiness.E001", FAIL, {"ALLOWED_HOSTS": ["*"]}, "contains '*'"),
    ("readiness.E001", FAIL, {"ALLOWED_HOSTS": [HOST, ".com"]}, "whole public suffix"),
    ("readiness.E001", FAIL, {"ALLOWED_HOSTS": []}, "is empty"),
    ("readiness.E001", WARN, {"ALLOWED_HOSTS": [HOST, "localhost"]}, "local address"),
    ("readiness.E002", PASS, {}, "terminates TLS itself"),
    (
        "readiness.E002",
        PASS,
        {
            "READINESS": {"BEHIND_TLS_PROXY": True},
            "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        },
        "trusts HTTP_X_FORWARDED_PROTO",
    ),
    ("readiness.E002", FAIL, {"READINESS": {"BEHIND_TLS_PROXY": True}}, "must be a 2-tuple"),
    (
        "readiness.E002",
        WARN,
        {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https")},
        "can claim https",
    ),
    ("readiness.E003", PASS, {}, "not installed"),
    (
        "readiness.E003",
        PASS,
        {
            "CORS_ALLOWED_ORIGINS": ["https://spa.example.com"],
            "CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"],
        },
        "1 https origin",
    ),
    ("readiness.E003", FAIL, {"CORS_ALLOW_ALL_ORIGINS": True}, "every origin"),
    (
        "readiness.E003",
        FAIL,
        {"CORS_ORIGIN_ALLOW_ALL": True, "CORS_ALLOW_CREDENTIALS": True},
        "any site make logged-in requests",
    ),
    ("readiness.E003", FAIL, {"CORS_ALLOWED_ORIGINS": ["http://spa.example.com"]}, "is not https"),
    ("readiness.E003", FAIL, {"CORS_ALLOWED_ORIGINS": ["https://localhost:3000"]}, "local address"),
    ("readiness.E003", FAIL, {"CORS_ALLOWED_ORIGINS": ["null"]}, "'null' origin"),
    (
        "readiness.E003",
        FAIL,
        {"CORS_ALLOWED_ORIGIN_REGEXES": [r"https://.*\.example\.com"]},
        "not anchored",
    ),
    (
        "readiness.E003",
        FAIL,
        {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://.*$"]},
        "matches https://readiness-probe.invalid",
    ),
    ("readiness.E004", PASS, {}, "all https"),
    ("readiness.E004", FAIL, {"CSRF_TRUSTED_ORIGINS": ["http://app.example.com"]}, "is not https"),
    ("readiness.E004", FAIL, {"CSRF_TRUSTED_ORIGINS": ["https://*"]}, "trusts every host"),
    ("readiness.E004", FAIL, {"CSRF_TRUSTED_ORIGINS": ["https://127.0.0.1:8000"]}, "local address"),
    ("readiness.E006", PASS, {}, "acme.scalekit.com is a production"),
    (
        "readiness.E006",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(ENVIRONMENT_URL="https://acme.scalekit.dev")},
        "development environment",
    ),
    (
        "readiness.E006",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(ENVIRONMENT_URL="https://127.0.0.1:8443")},
        "emulator or local address",
    ),
    (
        "readiness.E006",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(ENVIRONMENT_URL="http://acme.scalekit.com")},
        "is not https",
    ),
    (
        "readiness.E006",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(CLIENT_ID="client-123")},
        "does not start with skc_",
    ),
    (
        "readiness.E006",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(ENVIRONMENT_URL="https://auth.acme.com")},
        "auth.acme.com is a custom domain: readiness cannot tell whether it serves the production",
    ),
    (
        "readiness.E006",
        PASS,
        {
            "SCALEKIT_AUTH": production_scalekit(ENVIRONMENT_URL="https://auth.acme.com"),
            "READINESS": {"CUSTOM_SCALEKIT_DOMAINS": ["auth.acme.com"]},
        },
        "production",
    ),
    ("readiness.E007", PASS, {}, "https://app.example.com/auth/callback/"),
    (
        "readiness.E007",
        FAIL,
        {
            "SCALEKIT_AUTH": production_scalekit(
                REDIRECT_URI="http://app.example.com/auth/callback/"
            )
        },
        "is not https",
    ),
    (
        "readiness.E007",
        FAIL,
        {
            "SCALEKIT_AUTH": production_scalekit(
                REDIRECT_URI="https://localhost:8000/auth/callback/"
            )
        },
        "local, an IP address",
    ),
    (
        "readiness.E007",
        FAIL,
        {
            "SCALEKIT_AUTH": production_scalekit(
                REDIRECT_URI="https://app.example.com/auth/callback/?x=1"
            )
        },
        "query or fragment",
    ),
    (
        "readiness.E007",
        FAIL,
        {
            "SCALEKIT_AUTH": production_scalekit(
                REDIRECT_URI="https://other.example.org/auth/callback/"
            )
        },
        "not in ALLOWED_HOSTS",
    ),
    (
        "readiness.E007",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(REDIRECT_URI="https://app.example.com/admin/")},
        "does not resolve to scalekit_auth:callback",
    ),
    (
        "readiness.E007",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(REDIRECT_URI="https://app.example.com/" + "a" * 260)},
        "256 at most",
    ),
    ("readiness.E007", FAIL, {"SCALEKIT_AUTH": production_scalekit(REDIRECT_URI="")}, "is empty"),
    ("readiness.E008", PASS, {}, "https://app.example.com/"),
    (
        "readiness.E008",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(POST_LOGOUT_REDIRECT_URI="http://app.example.com/")},
        "is not https",
    ),
    (
        "readiness.E008",
        FAIL,
        {
            "SCALEKIT_AUTH": production_scalekit(
                POST_LOGOUT_REDIRECT_URI="https://app.example.com/no-such-page/"
            )
        },
        "path /no-such-page/ matches no URL pattern",
    ),
    (
        "readiness.E008",
        FAIL,
        {
            "SCALEKIT_AUTH": production_scalekit(
                POST_LOGOUT_REDIRECT_URI="https://app.example.com/auth/logout/"
            )
        },
        "is the scalekit_auth:logout view itself",
    ),
    ("readiness.E009", PASS, {}, "SameSite=Lax"),
    ("readiness.E009", FAIL, {"SESSION_COOKIE_SAMESITE": "Strict"}, "login state is lost"),
    ("readiness.E009", FAIL, {"CSRF_COOKIE_SAMESITE": "None"}, "cross-site requests"),
    (
        "readiness.E009",
        PASS,
        {"SESSION_COOKIE_SAMESITE": "lax", "CSRF_COOKIE_SAMESITE": "LAX"},
        "SameSite=Lax",
    ),
    ("readiness.E009", FAIL, {"SESSION_COOKIE_SAMESITE": "strict"}, "'strict': the browser"),
    ("readiness.E009", FAIL, {"CSRF_COOKIE_SAMESITE": "none"}, "cross-site requests"),
    ("readiness.E009", FAIL, {"CSRF_COOKIE_SAMESITE": None}, "None: cross-site requests"),
    (
        "readiness.E009",
        FAIL,
        {"SESSION_COOKIE_SAMESITE": "Lx"},
        "'Lx', not one of 'Lax', 'Strict', 'None': Django refuses to set the cookie",
    ),
    ("readiness.W010", PASS, {}, "__Host- cookie"),
    ("readiness.W010", WARN, {"SESSION_COOKIE_NAME": "sessionid"}, "no __Host- prefix"),
    ("readiness.W010", WARN, {"SESSION_COOKIE_DOMAIN": ".example.com"}, "browsers reject it"),
    ("readiness.E011", PASS, {}, "at most 12 h"),
    ("readiness.E011", FAIL, {"SESSION_COOKIE_AGE": 1209600}, "1209600 s (336 h), above 43200"),
    (
        "readiness.E011",
        PASS,
        {"SESSION_COOKIE_AGE": 86400, "READINESS": {"MAX_SESSION_AGE": 86400}},
        "24 h",
    ),
    ("readiness.E012", PASS, {}, "server side"),
    (
        "readiness.E012",
        FAIL,
        {"SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies"},
        "readable in the browser",
    ),
    ("readiness.E013", PASS, {}, "runs after the session and auth middleware"),
    ("readiness.E014", PASS, {}, "openid profile email offline_access"),
    (
        "readiness.E014",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(SCOPES=["profile", "email"])},
        "lacks openid",
    ),
    (
        "readiness.E014",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(SCOPES=["openid", "email"])},
        "lacks offline_access",
    ),
    ("readiness.W015", PASS, {}, "SECURE_CSP"),
    ("readiness.W015", WARN, {"SECURE_CSP": None}, "No Content Security Policy"),
    (
        "readiness.W015",
        WARN,
        {"SECURE_CSP": None, "CONTENT_SECURITY_POLICY": {"DIRECTIVES": {}}},
        "no header is sent",
    ),
    ("readiness.E016", PASS, {}, "webhook secret is set"),
    (
        "readiness.E016",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(WEBHOOK_SECRET="")},
        "set SCALEKIT_WEBHOOK_SECRET",
    ),
    (
        "readiness.E016",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(WEBHOOK_SECRET="whsec_other")},
        "does not come from the environment",
    ),
    ("readiness.E017", PASS, {}, "CSRF exempt"),
    ("readiness.E021", PASS, {}, "at most 10 s"),
    (
        "readiness.E021",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(TOKEN_LEEWAY_SECONDS=600)},
        "not be accepted for more than 60 s",
    ),
    (
        "readiness.E021",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(TOKEN_LEEWAY_SECONDS="10")},
        "must be a number",
    ),
    ("readiness.E023", PASS, {}, "100% of users"),
    (
        "readiness.E023",
        FAIL,
        {"SCALEKIT_AUTH": production_scalekit(ROLLOUT_PERCENTAGE=150)},
        "from 0 to 100",
    ),
    ("readiness.E024", FAIL, {}, "LocMemCache, private to each process"),
    (
        "readiness.E024",
        PASS,
        {
            "CACHES": {
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": "redis://127.0.0.1:6379",
                }
            }
        },
        "(RedisCache) is shared",
    ),
    (
        "readiness.E024",
        WARN,
        {
            "CACHES": {
                "default": {
                    "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                    "LOCATION": "/tmp/x",
                }
            }
        },
        "one host only",
    ),
    ("readiness.E026", PASS, {}, "its backend authenticates"),
    (
        "readiness.E026",
        FAIL,
        {"AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend"]},
        "is not in AUTHENTICATION_BACKENDS",
    ),
    ("readiness.E027", PASS, {}, "are routed"),
    (
        "readiness.E027",
        FAIL,
        {"ROOT_URLCONF": "tests.readiness.urls_bare"},
        "Login view scalekit_auth:login is not installed",
    ),
    ("readiness.E030", PASS, {}, "stored per Django user"),
    ("readiness.W018", PASS, {}, "reach a handler"),
    ("readiness.W018", WARN, {"LOGGING": {}}, "LOGGING is not configured"),
    (
        "readiness.W018",
        WARN,
        {
            "LOGGING": {
                "version": 1,
                "handlers": {"null": {"class": "logging.NullHandler"}},
                "root": {"handlers": ["null"], "level": "WARNING"},
            }
        },
        "has no handler",
    ),
    (
        "readiness.W018",
        WARN,
        {
            "LOGGING": {
                "version": 1,
                "handlers": {"console": {"class": "logging.StreamHandler"}},
                "root": {"handlers": ["console"], "level": "ERROR"},
            }
        },
        "warnings are dropped",
    ),
    ("readiness.W019", PASS, {}, "1 admin(s)"),
    ("readiness.W019", WARN, {"ADMINS": []}, "500s go unnoticed"),
    ("readiness.W020", PASS, {}, "Health endpoint at /admin/"),
    ("readiness.W020", WARN, {"READINESS": {}}, "names no health endpoint"),
    (
        "readiness.W020",
        WARN,
        {"READINESS": {"HEALTH_URL_NAME": "health_check:home"}},
        "does not resolve",
    ),
    ("readiness.W029", WARN, {}, "still use the legacy authentication"),
    (
        "readiness.W029",
        PASS,
        {
            "REST_FRAMEWORK": {
                "DEFAULT_AUTHENTICATION_CLASSES": ["scalekit_auth.drf.ScalekitBearerAuthentication"]
            }
        },
        "authenticates Scalekit bearer",
    ),
    ("readiness.W062", PASS, {}, "31536000 s"),
    ("readiness.W062", WARN, {"SECURE_HSTS_SECONDS": 3600}, "under a year"),
    ("readiness.W062", FAIL, {"SECURE_HSTS_SECONDS": 0}, "not told to insist on https"),
]

for _probe_id, _outcome, _, _ in CASES:
    covers(_probe_id, _outcome)(lambda: None)


@pytest.mark.parametrize(
    ("probe_id", "expected", "overrides", "fragment"),
    CASES,
    ids=[f"{c[0].split('.')[1]}-{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_settings_probe(probe_id, expected, overrides, fragment):
    with production(**overrides):
        result = run_probe(probe_id)
    assert result.status == expected, result.message
    assert fragment in result.message


class TestCredentials:
    """A09: Scalekit credentials are set, not placeholders, from the environment, not in source."""

    @covers("readiness.E005", PASS)
    def test_credentials_from_environment_pass(self):
        with production():
            result = run_probe("readiness.E005")
        assert result.status == PASS
        assert result.evidence["CLIENT_SECRET"].endswith("characters)")

    @covers("readiness.E005", FAIL)
    def test_value_not_from_environment(self):
        with production(env={"SCALEKIT_CLIENT_ID": "skc_99999999999999999"}):
            result = run_probe("readiness.E005")
        assert result.status == FAIL
        assert "CLIENT_ID'] does not come from the environment" in result.message

    def test_alias_environment_variable_accepted(self):
        with production(
            env={"SCALEKIT_ENVIRONMENT_URL": None, "SCALEKIT_ENV_URL": "https://acme.scalekit.com"}
        ):
            assert run_probe("readiness.E005").status == PASS

    @pytest.mark.parametrize("placeholder", ["YOUR_CLIENT_SECRET", "<secret>", "change-me"])
    def test_placeholder(self, placeholder):
        with production(
            env={"SCALEKIT_CLIENT_SECRET": placeholder},
            SCALEKIT_AUTH=production_scalekit(CLIENT_SECRET=placeholder),
        ):
            result = run_probe("readiness.E005")
        assert result.status == FAIL
        assert "is a placeholder" in result.message
        assert placeholder not in str(result.evidence)

    def test_empty_credentials(self):
        with production(SCALEKIT_AUTH=production_scalekit(CLIENT_SECRET="", CLIENT_ID="")):
            result = run_probe("readiness.E005")
        assert result.status == FAIL
        assert "CLIENT_ID'] is empty; set SCALEKIT_CLIENT_ID" in result.message
        assert "CLIENT_SECRET'] is empty" in result.message

    def test_secret_written_in_settings_file(self, tmp_path, monkeypatch):
        """A secret that appears literally in the settings module's source fails."""
        import sys
        import types

        source = tmp_path / "leaky_settings.py"
        source.write_text('SECRET = "sks_leaked_secret_value_123"\n')
        module = types.ModuleType("leaky_settings")
        module.__file__ = str(source)
        monkeypatch.setitem(sys.modules, "leaky_settings", module)
        monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "leaky_settings")
        leaked = "sks_leaked_secret_value_123"
        with production(
            env={"SCALEKIT_CLIENT_SECRET": leaked},
            SCALEKIT_AUTH=production_scalekit(CLIENT_SECRET=leaked),
        ):
            result = run_probe("readiness.E005")
        assert result.status == FAIL
        assert "is written in leaky_settings.py" in result.message
        assert "leaked_secret" not in result.message + str(result.evidence)


class TestAppWiring:
    @covers("readiness.E025", PASS)
    @modify_settings(INSTALLED_APPS={"remove": ["scalekit_auth.emulator"]})
    def test_no_emulator_in_production(self, monkeypatch):
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", raising=False)
        with production():
            assert run_probe("readiness.E025").status == PASS
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/tmp/ca.pem")
            result = run_probe("readiness.E025")
        assert result.status == WARN
        assert "REQUESTS_CA_BUNDLE replaces the TLS trust store" in result.message

    @covers("readiness.E025", FAIL)
    def test_emulator_and_ca_bundle(self):
        with production(SCALEKIT_AUTH=production_scalekit(CA_BUNDLE="/tmp/ca.pem")):
            result = run_probe("readiness.E025")
        assert result.status == FAIL
        assert "emulator app (scalekit_auth.emulator) is installed" in result.message
        assert "CA_BUNDLE'] makes the SDK trust an extra CA" in result.message

    @covers("readiness.E013", FAIL)
    def test_middleware_missing(self):
        with (
            production(),
            modify_settings(
                MIDDLEWARE={"remove": ["scalekit_auth.middleware.ScalekitSessionMiddleware"]}
            ),
        ):
            result = run_probe("readiness.E013")
        assert result.status == FAIL
        assert "is not in MIDDLEWARE" in result.message

    def test_middleware_before_session(self):
        from django.conf import settings

        order = [m for m in settings.MIDDLEWARE if "Scalekit" not in m]
        order.insert(1, "scalekit_auth.middleware.ScalekitSessionMiddleware")
        with production(MIDDLEWARE=order):
            result = run_probe("readiness.E013")
        assert result.status == FAIL
        assert "comes before SessionMiddleware" in result.message

    @covers("readiness.E017", FAIL)
    def test_webhook_not_csrf_exempt(self):
        with production(ROOT_URLCONF="tests.readiness.urls_bad"):
            result = run_probe("readiness.E017")
        assert result.status == FAIL
        assert "is not csrf_exempt" in result.message

    @covers("readiness.E030", FAIL)
    @covers("readiness.E022", FAIL)
    @covers("readiness.W028", WARN)
    @modify_settings(INSTALLED_APPS={"remove": ["scalekit_auth.emulator", "scalekit_auth"]})
    def test_scalekit_models_missing(self):
        with production():
            assert "ScalekitIdentity is not installed" in run_probe("readiness.E030").message
            rollback = run_probe("readiness.E022")
            assert rollback.status == FAIL
            assert "there is no kill switch" in rollback.message
            events = run_probe("readiness.W028")
            assert events.status == WARN
            assert "AuthEvent is not installed" in events.message
            wiring = run_probe("readiness.E026")
            assert wiring.status == FAIL
            assert "scalekit_auth is not in INSTALLED_APPS" in wiring.message

    @covers("readiness.E022", PASS)
    @covers("readiness.W028", PASS)
    def test_admin_registration(self, admin_registered):
        with production():
            with admin_registered(True):
                assert run_probe("readiness.E022").status == PASS
                assert run_probe("readiness.W028").status == PASS
            with admin_registered(False):
                assert "not in the admin" in run_probe("readiness.E022").message
                assert run_probe("readiness.W028").status == WARN

    @covers("readiness.W029", SKIP)
    @modify_settings(INSTALLED_APPS={"remove": ["rest_framework"]})
    def test_drf_not_installed(self):
        assert run_probe("readiness.W029").status == SKIP


@pytest.fixture
def admin_registered():
    """Register (or unregister) scalekit_auth's RolloutSettings and AuthEvent in the admin."""
    from contextlib import contextmanager

    from django.apps import apps

    models = [
        apps.get_model("scalekit_auth", "RolloutSettings"),
        apps.get_model("scalekit_auth", "AuthEvent"),
    ]

    @contextmanager
    def state(registered: bool):
        before = {m: admin.site._registry.get(m) for m in models}
        for model in models:
            admin.site._registry.pop(model, None)
            if registered:
                admin.site.register(model)
        try:
            yield
        finally:
            for model, model_admin in before.items():
                admin.site._registry.pop(model, None)
                if model_admin is not None:
                    admin.site._registry[model] = model_admin

    return state


def test_system_check_ids_are_stable():
    """Every settings probe keeps an id that SILENCED_SYSTEM_CHECKS can name."""
    from readiness.registry import SETTINGS, all_probes

    ids = [p.id for p in all_probes() if p.kind == SETTINGS]
    assert len(ids) == len(set(ids)) >= 25


@override_settings(SILENCED_SYSTEM_CHECKS=["readiness.E011"])
def test_silenced_probe_is_waived():
    with production(SESSION_COOKIE_AGE=1209600, SILENCED_SYSTEM_CHECKS=["readiness.E011"]):
        result = run_probe("readiness.E011")
    assert result.status == "waived"
    assert result.message.startswith("Silenced in SILENCED_SYSTEM_CHECKS: SESSION_COOKIE_AGE")
