"""System checks report missing and unsafe settings with stable ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from django.contrib import admin
from django.core import checks as django_checks
from django.core.checks import Error, Warning
from django.urls import path

from scalekit_auth import checks

from .project_backends import LEGACY
from .project_backends import PATH as SUBCLASS

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
    assert len(defined) == 20
    for check_id in defined:
        assert f"``{check_id}``" in checks.__doc__, check_id


def test_the_retired_w012_is_documented_and_never_raised(settings):
    assert "``scalekit_auth.W012``: retired" in checks.__doc__
    configure(settings, ROLE_GROUPS={"admin": "Admins"})
    found = [m.id for check in checks.ALL for m in check()]
    assert "scalekit_auth.W012" not in found and checks.E018 in found


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
        STAFF_ROLES="admin",
        ROLE_GROUPS={"admin": "Admins"},
        REFRESH_LOCK_TIMEOUT=10,
    )
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.SESSION_COOKIE_SAMESITE = "Strict"
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
        checks.E017,
        checks.E018,
        checks.E019,
        checks.E020,
    ]
    assert all(e.hint for e in errors), [e.id for e in errors if not e.hint]


def test_missing_credentials(settings):
    configure(settings, CLIENT_ID="", CLIENT_SECRET="")
    assert checks.check_credentials() == [
        Error(
            "Scalekit is not configured: SCALEKIT_AUTH is missing CLIENT_ID, CLIENT_SECRET.",
            hint=checks.E001_HINT,
            id=checks.E001,
        )
    ]


def test_http_environment_url(settings):
    configure(settings, ENVIRONMENT_URL="http://acme.scalekit.com")
    assert checks.check_environment_url() == [
        Error(
            checks.E002_MSG.format(url="http://acme.scalekit.com"),
            hint=checks.E002_HINT,
            id=checks.E002,
        )
    ]


def test_middleware_order_and_backend(settings):
    middleware = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    settings.MIDDLEWARE = [checks.MIDDLEWARE, *middleware]
    assert ids(checks.check_middleware()) == [checks.E003, checks.E003]
    settings.MIDDLEWARE = [*middleware, checks.MIDDLEWARE]
    settings.AUTHENTICATION_BACKENDS = [LEGACY]
    assert checks.check_middleware() == [
        Warning(checks.W004_MSG, hint=checks.W004_HINT, id=checks.W004)
    ]


def test_a_subclass_of_the_backend_counts_as_the_backend(settings):
    settings.AUTHENTICATION_BACKENDS = [SUBCLASS, LEGACY]
    assert checks.check_middleware() == []  # no W004: the subclass logs Scalekit users in
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    assert checks.check_middleware() == [
        Error(checks.E013_MSG, hint=checks.E013_HINT, id=checks.E013)
    ]


def test_middleware_between_session_and_authentication_is_refused(settings):
    middleware = [m for m in settings.MIDDLEWARE if m != checks.MIDDLEWARE]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    settings.MIDDLEWARE = [*middleware[:auth], checks.MIDDLEWARE, *middleware[auth:]]
    assert checks.check_middleware() == [
        Error(
            f"{checks.MIDDLEWARE} must come after {middleware[auth]}.",
            hint=checks.E003_HINT,
            id=checks.E003,
        )
    ]


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
    assert checks.check_session_engine() == [
        Error(checks.E005_MSG, hint=checks.E005_HINT, id=checks.E005)
    ]


@pytest.mark.parametrize("value", ["Strict", "strict"])
def test_strict_samesite_session_cookie_is_refused(settings, value):
    settings.SESSION_COOKIE_SAMESITE = value
    [error] = checks.check_session_cookie_samesite()
    assert error == Error(
        checks.E019_MSG.format(value=value), hint=checks.E019_HINT, id=checks.E019
    )
    assert "'Lax'" in error.hint


@pytest.mark.parametrize("value", ["Lax", "None", False])
def test_other_samesite_values_pass(settings, value):
    settings.SESSION_COOKIE_SAMESITE = value
    assert checks.check_session_cookie_samesite() == []


def test_insecure_session_cookies_are_left_to_djangos_deploy_checks(settings):
    """Django's own deploy checks report them, so scalekit_auth adds no duplicate."""
    settings.SESSION_COOKIE_SECURE = False
    settings.SESSION_COOKIE_HTTPONLY = False
    found = {
        m.id
        for m in django_checks.run_checks(
            tags=[django_checks.Tags.security], include_deployment_checks=True
        )
    }
    assert {"security.W012", "security.W015"} <= found
    ours = [m for check in checks.ALL + checks.DEPLOY for m in check()]
    assert not [m for m in ours if "SESSION_COOKIE" in m.msg]


def test_scopes(settings):
    configure(settings, SCOPES=["profile"])
    assert checks.check_scopes() == [
        Error(checks.E011_MSG, hint=checks.E011_HINT, id=checks.E011),
        Warning(checks.W006_MSG, hint=checks.W006_HINT, id=checks.W006),
    ]


def test_scopes_as_one_string_is_only_a_shape_error(settings):
    configure(settings, SCOPES="openid profile email offline_access")
    assert checks.check_scopes() == []  # "openid" in a string would be a misleading pass or fail
    assert ids(checks.check_setting_shapes()) == [checks.E017]


def test_redirect_uris_must_be_https(settings):
    configure(
        settings,
        REDIRECT_URI="http://app.example/auth/callback/",
        POST_LOGOUT_REDIRECT_URI="/after",
    )
    assert checks.check_uris() == [
        Warning(
            checks.W007_MSG.format(key="REDIRECT_URI", value="http://app.example/auth/callback/"),
            hint=checks.W007_HINT,
            id=checks.W007,
        ),
        Warning(
            checks.W007_MSG.format(key="POST_LOGOUT_REDIRECT_URI", value="/after"),
            hint=checks.W007_HINT,
            id=checks.W007,
        ),
    ]


def test_unshared_cache_is_a_deploy_warning(settings):
    assert checks.check_shared_cache() == [  # the test settings use locmem
        Warning(
            checks.W008_MSG.format(alias="default", backend="LocMemCache"),
            hint=checks.W008_HINT,
            id=checks.W008,
        )
    ]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://x",
        }
    }
    assert checks.check_shared_cache() == []


@pytest.mark.parametrize("value", [101, -1, "50", True])
def test_rollout_percentage(settings, value):
    configure(settings, ROLLOUT_PERCENTAGE=value)
    assert checks.check_rollout() == [
        Error(checks.E009_MSG.format(value=value), hint=checks.E009_HINT, id=checks.E009)
    ]


def test_secret_not_from_the_environment(settings, monkeypatch):
    monkeypatch.setenv("SCALEKIT_CLIENT_SECRET", "from-env")
    configure(settings, CLIENT_SECRET="written-in-settings")
    [warning] = checks.check_secrets_from_environment()
    assert warning == Warning(
        checks.W010_MSG.format(key="CLIENT_SECRET", variable="SCALEKIT_CLIENT_SECRET"),
        hint=checks.W010_HINT,
        id=checks.W010,
    )
    assert "written-in-settings" not in warning.msg


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("SUPERUSER_ROLES", "admin", "it is a str ('admin')"),
        ("STAFF_ROLES", "admin", "it is a str ('admin')"),
        ("STAFF_ROLES", {"admin"}, "it is a set ({'admin'})"),
        ("STAFF_ROLES", ["admin", 1], "it holds a int (1)"),
        ("MANAGED_GROUPS", "Administrators", "it is a str ('Administrators')"),
        ("MANAGED_GROUPS", ["Administrators", ""], "it holds an empty string"),
        ("SCOPES", "openid profile", "it is a str ('openid profile')"),
    ],
)
def test_role_and_scope_settings_must_be_lists_of_strings(settings, key, value, problem):
    configure(settings, **{key: value})
    assert checks.check_setting_shapes() == [
        Error(
            f"SCALEKIT_AUTH['{key}'] must be a list or tuple of non-empty strings, but {problem}.",
            hint=checks.E017_HINT[key],
            id=checks.E017,
        )
    ]


def test_lists_tuples_and_no_managed_groups_pass(settings):
    configure(
        settings,
        STAFF_ROLES=("admin",),
        SUPERUSER_ROLES=[],
        MANAGED_GROUPS=None,
        SCOPES=("openid", "offline_access"),
    )
    assert checks.check_setting_shapes() == []
    configure(settings, MANAGED_GROUPS=["Administrators"])
    assert checks.check_setting_shapes() == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"admin": "Admins"}, "the groups of 'admin': it is a str ('Admins')"),
        ({"admin": ["Admins", None]}, "the groups of 'admin': it holds a NoneType (None)"),
        ({1: ["Admins"]}, "the key 1 is not a role name"),
        ([("admin", ["Admins"])], "it is a list ([('admin', ['Admins'])])"),
    ],
)
def test_role_groups_of_the_wrong_shape_is_an_error(settings, value, problem):
    configure(settings, ROLE_GROUPS=value)
    assert checks.check_role_groups() == [
        Error(
            "SCALEKIT_AUTH['ROLE_GROUPS'] must map role names to lists of group names, but "
            f"{problem}.",
            hint=checks.E018_HINT,
            id=checks.E018,
        )
    ]


def test_role_groups_with_lists_or_tuples_pass(settings):
    configure(settings, ROLE_GROUPS={"admin": ["Administrators"], "member": ("Members",)})
    assert checks.check_role_groups() == []


@pytest.mark.parametrize("value", [10, 50, 60.5, "120", True])
def test_a_refresh_lock_shorter_than_the_longest_refresh_is_refused(settings, value):
    configure(settings, REFRESH_LOCK_TIMEOUT=value)
    [error] = checks.check_refresh_lock_timeout()
    assert (error.id, error.hint) == (checks.E020, checks.E020_HINT)
    assert f"REFRESH_LOCK_TIMEOUT'] is {value!r}" in error.msg


@pytest.mark.parametrize("value", [51, 60, 300])
def test_a_refresh_lock_outliving_the_longest_refresh_passes(settings, value):
    configure(settings, REFRESH_LOCK_TIMEOUT=value)
    assert checks.check_refresh_lock_timeout() == []


def legacy_login_warning(url):
    return Warning(checks.W021_MSG.format(url=url), hint=checks.W021_HINT, id=checks.W021)


@pytest.mark.parametrize("url", ["/admin/login/", "/admin/login/?next=/"])
def test_the_admin_login_as_legacy_login_is_a_warning(settings, url):
    """Non-staff users could not log in after a rollback; the default is the admin login."""
    configure(settings, LEGACY_LOGIN_URL=url)
    assert checks.check_legacy_login_url() == [legacy_login_warning(url)]
    settings.SCALEKIT_AUTH = {
        k: v for k, v in settings.SCALEKIT_AUTH.items() if k != "LEGACY_LOGIN_URL"
    }
    assert checks.check_legacy_login_url() == [legacy_login_warning("/admin/login/")]


#: The URLconf of test_the_admin_login_is_found_where_the_admin_is_routed.
urlpatterns = [path("staff/", admin.site.urls)]


@pytest.mark.urls(__name__)
def test_the_admin_login_is_found_where_the_admin_is_routed(settings):
    configure(settings, LEGACY_LOGIN_URL="/staff/login/")
    assert checks.check_legacy_login_url() == [legacy_login_warning("/staff/login/")]


def test_the_projects_own_login_or_no_scalekit_backend_passes(settings):
    configure(settings, LEGACY_LOGIN_URL="/accounts/login/")
    assert checks.check_legacy_login_url() == []
    configure(settings, LEGACY_LOGIN_URL="/admin/login/")
    settings.AUTHENTICATION_BACKENDS = [LEGACY]
    assert checks.check_legacy_login_url() == []
