"""System checks report missing and unsafe settings with stable ids."""

from __future__ import annotations

import pytest

from scalekit_auth import checks


def ids(results):
    return [r.id for r in results]


def configure(settings, **values):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **values}


def test_the_project_settings_pass_every_check():
    for check in checks.ALL:
        assert check() == [], check.__name__


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


def test_signed_cookie_sessions_are_refused(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert ids(checks.check_session_engine()) == [checks.E005]


def test_scopes(settings):
    configure(settings, SCOPES=["profile"])
    assert ids(checks.check_scopes()) == [checks.E011, checks.W006]


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


def test_secret_not_from_the_environment(settings, monkeypatch):
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", "from-env")
    configure(settings, CLIENT_SECRET="written-in-settings")
    [warning] = checks.check_secrets_from_environment()
    assert warning.id == checks.W010 and "SCALEKIT_CLIENT_SECRET" in warning.msg
    assert "written-in-settings" not in warning.msg


def test_role_groups_shape(settings):
    configure(settings, ROLE_GROUPS={"admin": "Admins"})
    assert ids(checks.check_role_groups()) == [checks.W012]
