"""System checks report missing and unsafe settings with stable ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from django.core.checks import Error

from scalekit_auth import checks

WEBHOOK_SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA=="


def ids(results):
    return [r.id for r in results]


def configure(settings, **values):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **values}


def test_the_project_settings_pass_every_check():
    for check in checks.ALL:
        assert check() == [], check.__name__


def test_every_id_is_documented_in_the_module_docstring():
    defined = sorted(
        value
        for name, value in vars(checks).items()
        if len(name) == 4 and name[0] in "EW" and name[1:].isdigit()
    )
    assert len(defined) == 16
    for check_id in defined:
        assert f"``{check_id}``" in checks.__doc__, check_id


def test_every_error_has_a_hint(settings):
    """Each rule, broken on purpose, explains what to do."""
    configure(
        settings,
        CLIENT_ID="",
        ENVIRONMENT_URL="http://x",
        SCOPES=["profile"],
        ROLLOUT_PERCENTAGE=500,
        CACHE_ALIAS="nope",
        WEBHOOK_SECRET="nope",
        EVENT_THROTTLE_SECONDS=-1,
    )
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    errors = [m for check in checks.ALL for m in check() if isinstance(m, Error)]
    assert sorted({e.id for e in errors}) == [
        checks.E001,
        checks.E002,
        checks.E005,
        checks.E009,
        checks.E011,
        checks.E013,
        checks.E014,
        checks.E015,
        checks.E016,
    ]
    assert all(e.hint for e in errors), [e.id for e in errors if not e.hint]


def test_missing_credentials(settings):
    configure(settings, CLIENT_ID="", CLIENT_SECRET="")
    [error] = checks.check_credentials()
    assert error.id == checks.E001 and "CLIENT_ID, CLIENT_SECRET" in error.msg


def test_http_environment_url(settings):
    configure(settings, ENVIRONMENT_URL="http://acme.scalekit.com")
    assert ids(checks.check_environment_url()) == [checks.E002]


def test_middleware_order_and_backend(settings):
    middleware = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    settings.MIDDLEWARE = [checks.MIDDLEWARE, *middleware]
    assert ids(checks.check_middleware()) == [checks.E003, checks.E003]
    settings.MIDDLEWARE = [*middleware, checks.MIDDLEWARE]
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert ids(checks.check_middleware()) == [checks.W004]


def test_middleware_between_session_and_authentication_is_refused(settings):
    middleware = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    settings.MIDDLEWARE = [*middleware[:auth], checks.MIDDLEWARE, *middleware[auth:]]
    [error] = checks.check_middleware()
    assert error.id == checks.E003
    assert error.msg == f"{checks.MIDDLEWARE} must come after {middleware[auth]}."


def test_backend_without_the_middleware_is_an_error(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    assert checks.BACKEND in settings.AUTHENTICATION_BACKENDS
    assert checks.check_middleware() == [
        Error(checks.E013_MSG, hint=checks.E013_HINT, id=checks.E013)
    ]
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert checks.check_middleware() == []  # scalekit_auth not used for logins: nothing to say


def test_cache_alias_must_name_a_configured_cache(settings):
    configure(settings, CACHE_ALIAS="shared")
    assert checks.check_cache_alias() == [
        Error(
            checks.E014_MSG.format(alias="shared", known="'default'"),
            hint=checks.E014_HINT,
            id=checks.E014,
        )
    ]
    settings.CACHES = {
        **settings.CACHES,
        "shared": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    assert checks.check_cache_alias() == []


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("dGVzdC13ZWJob29r", "it does not start with 'whsec_'"),
        ("skwh_dGVzdC13ZWJob29r", "it does not start with 'whsec_'"),
        ("whsec_", "nothing follows 'whsec_'"),
        ("whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA", "not standard base64"),
        ("whsec_dGVzdC13ZWJob29r\n", "not standard base64"),
        ("whsec_dGVzd_C13ZWJob29r", "not standard base64"),
        ("whsec_====", "not standard base64"),
    ],
)
def test_webhook_secret_of_the_wrong_shape(settings, secret, problem):
    configure(settings, WEBHOOK_SECRET=secret)
    [error] = checks.check_webhook_secret()
    assert (error.id, error.hint) == (checks.E015, checks.E015_HINT)
    assert error.msg.startswith("SCALEKIT_AUTH['WEBHOOK_SECRET'] is not of the form whsec_")
    assert problem in error.msg
    shown = secret.removeprefix("whsec_")[:8]
    assert not shown or shown not in error.msg + error.hint  # the secret is never shown


@pytest.mark.parametrize("secret", ["", WEBHOOK_SECRET, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
def test_webhook_secret_of_the_right_shape_or_unset(settings, secret):
    configure(settings, WEBHOOK_SECRET=secret)
    assert checks.check_webhook_secret() == []


def test_a_secret_the_check_passes_verifies_signatures_in_the_sdk(settings, sdk):
    configure(settings, WEBHOOK_SECRET=WEBHOOK_SECRET)
    assert checks.check_webhook_secret() == []
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    now, body = int(time.time()), '{"id":"evt_1"}'
    digest = hmac.new(key, f"evt_1.{now}.{body}".encode(), hashlib.sha256).digest()
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(now),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }
    assert sdk.verify_webhook_payload(WEBHOOK_SECRET, headers, body) is True


@pytest.mark.parametrize(
    ("key", "value", "minimum"),
    [
        ("EVENT_THROTTLE_SECONDS", -1, 0),
        ("EVENT_THROTTLE_SECONDS", "60", 0),
        ("EVENT_RETENTION_DAYS", 0, 1),
        ("EVENT_RETENTION_DAYS", 1.5, 1),
        ("EVENT_RETENTION_DAYS", True, 1),
    ],
)
def test_event_settings(settings, key, value, minimum):
    configure(settings, **{key: value})
    assert checks.check_event_settings() == [
        Error(
            checks.E016_MSG.format(key=key, minimum=minimum, value=value),
            hint=checks.E016_HINT[key],
            id=checks.E016,
        )
    ]


def test_event_settings_zero_throttle_is_allowed(settings):
    configure(settings, EVENT_THROTTLE_SECONDS=0, EVENT_RETENTION_DAYS=1)
    assert checks.check_event_settings() == []


def test_signed_cookie_sessions_are_refused(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert ids(checks.check_session_engine()) == [checks.E005]


def test_scopes(settings):
    configure(settings, SCOPES=["profile"])
    assert ids(checks.check_scopes()) == [checks.E011, checks.W006]
    assert checks.check_scopes()[0].hint == checks.E011_HINT


def test_redirect_uris_must_be_https(settings):
    configure(
        settings,
        REDIRECT_URI="http://app.example/auth/callback/",
        POST_LOGOUT_REDIRECT_URI="/after",
    )
    assert ids(checks.check_uris()) == [checks.W007, checks.W007]


def test_unshared_cache_is_a_deploy_warning(settings):
    assert ids(checks.check_shared_cache()) == [checks.W008]  # the test settings use locmem
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://x",
        }
    }
    assert checks.check_shared_cache() == []


@pytest.mark.parametrize("value", [101, -1, "50"])
def test_rollout_percentage(settings, value):
    configure(settings, ROLLOUT_PERCENTAGE=value)
    assert ids(checks.check_rollout()) == [checks.E009]
    assert checks.check_rollout()[0].hint == checks.E009_HINT


def test_secret_not_from_the_environment(settings, monkeypatch):
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", "from-env")
    configure(settings, CLIENT_SECRET="written-in-settings")
    [warning] = checks.check_secrets_from_environment()
    assert warning.id == checks.W010 and "SCALEKIT_CLIENT_SECRET" in warning.msg
    assert "written-in-settings" not in warning.msg


def test_role_groups_shape(settings):
    configure(settings, ROLE_GROUPS={"admin": "Admins"})
    assert ids(checks.check_role_groups()) == [checks.W012]
