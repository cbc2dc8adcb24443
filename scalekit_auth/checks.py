"""System checks for ``scalekit_auth`` settings: one function per rule, stable ids, hints.

Ids are stable: never renumber one, add the next number instead.

- ``scalekit_auth.E001``: ENVIRONMENT_URL, CLIENT_ID or CLIENT_SECRET is missing.
- ``scalekit_auth.E002``: ENVIRONMENT_URL is not an https URL.
- ``scalekit_auth.E003``: ScalekitSessionMiddleware comes before SessionMiddleware or
  AuthenticationMiddleware (or one of them is missing).
- ``scalekit_auth.W004``: ScalekitSessionMiddleware is installed but neither ScalekitBackend nor
  a subclass of it is in AUTHENTICATION_BACKENDS.
- ``scalekit_auth.E005``: the signed_cookies session engine would put tokens in the browser.
- ``scalekit_auth.W006``: SCOPES has no ``offline_access`` (no refresh token).
- ``scalekit_auth.W007``: REDIRECT_URI or POST_LOGOUT_REDIRECT_URI is not an absolute https URL.
- ``scalekit_auth.W008`` (deploy): the cache of CACHE_ALIAS is not shared between processes.
- ``scalekit_auth.E009``: ROLLOUT_PERCENTAGE is not an integer 0-100.
- ``scalekit_auth.W010``: CLIENT_SECRET or WEBHOOK_SECRET does not come from the environment.
- ``scalekit_auth.E011``: SCOPES has no ``openid``.
- ``scalekit_auth.W012``: retired; ROLE_GROUPS of the wrong shape is now the Error E018 (as a
  warning it let ``{'admin': 'Admins'}`` through, which created one group per character).
- ``scalekit_auth.E013``: ScalekitBackend (or a subclass) is in AUTHENTICATION_BACKENDS but
  ScalekitSessionMiddleware is not in MIDDLEWARE (tokens never refreshed, kill switch ignored).
- ``scalekit_auth.E014``: CACHE_ALIAS names no cache in CACHES.
- ``scalekit_auth.E015``: WEBHOOK_SECRET is set but is not ``whsec_<standard base64>``.
- ``scalekit_auth.E016``: EVENT_THROTTLE_SECONDS or EVENT_RETENTION_DAYS is not a valid integer.
- ``scalekit_auth.E017``: STAFF_ROLES, SUPERUSER_ROLES, MANAGED_GROUPS (unless None) or SCOPES is
  not a list or tuple of non-empty strings (a bare string would be read one character at a time).
- ``scalekit_auth.E018``: ROLE_GROUPS does not map role names to lists or tuples of group names.
- ``scalekit_auth.E019``: SESSION_COOKIE_SAMESITE is ``'Strict'``: the browser then sends no
  session cookie on its way back from Scalekit's hosted login, so every callback fails with
  ``state_mismatch``.
- ``scalekit_auth.E020``: REFRESH_LOCK_TIMEOUT does not outlive the longest refresh (a second
  request could send the same refresh token while the first is still on its way).
- ``scalekit_auth.W021``: ScalekitBackend (or a subclass) is in AUTHENTICATION_BACKENDS and
  LEGACY_LOGIN_URL is the admin's login page, which refuses every account that is not staff:
  after a rollback (or for users the rollout keeps off Scalekit) they could not log in.

Not checked here because Django's own deploy checks already do: ``SESSION_COOKIE_SECURE``
(``security.W010``-``W012``) and ``SESSION_COOKIE_HTTPONLY`` (``security.W013``-``W015``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from .backends import scalekit_backend_path
from .conf import app_settings, names_problem, role_groups_problem

MIDDLEWARE = "scalekit_auth.middleware.ScalekitSessionMiddleware"
BACKEND = "scalekit_auth.backends.ScalekitBackend"

E001 = "scalekit_auth.E001"
E002 = "scalekit_auth.E002"
E003 = "scalekit_auth.E003"
W004 = "scalekit_auth.W004"
E005 = "scalekit_auth.E005"
W006 = "scalekit_auth.W006"
W007 = "scalekit_auth.W007"
W008 = "scalekit_auth.W008"
E009 = "scalekit_auth.E009"
W010 = "scalekit_auth.W010"
E011 = "scalekit_auth.E011"
E013 = "scalekit_auth.E013"
E014 = "scalekit_auth.E014"
E015 = "scalekit_auth.E015"
E016 = "scalekit_auth.E016"
E017 = "scalekit_auth.E017"
E018 = "scalekit_auth.E018"
E019 = "scalekit_auth.E019"
E020 = "scalekit_auth.E020"
W021 = "scalekit_auth.W021"

E001_MSG = "Scalekit is not configured: SCALEKIT_AUTH is missing {missing}."
E001_HINT = (
    "Set SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET in the "
    "environment (Scalekit dashboard > Developers > Settings)."
)
E002_MSG = "SCALEKIT_AUTH['ENVIRONMENT_URL'] must be an https URL, not {url!r}."
E002_HINT = "The SDK's gRPC channel always uses TLS; an http URL cannot work."
E003_MSG = "{middleware} must come after {required}."
E003_HINT = "Move it below SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE."
W004_MSG = (
    f"{MIDDLEWARE} is installed but neither {BACKEND} nor a subclass of it is in "
    "AUTHENTICATION_BACKENDS."
)
W004_HINT = "Add it, or the Scalekit login cannot log anyone in."
E005_MSG = "The signed_cookies session engine would put Scalekit tokens in the browser."
E005_HINT = "Use a server-side engine: cached_db (recommended), db or cache."
W006_MSG = (
    "SCALEKIT_AUTH['SCOPES'] has no 'offline_access': no refresh token is issued, so users are "
    "logged out when their access token expires (5 minutes by default)."
)
W006_HINT = "Add 'offline_access' to SCOPES."
W007_MSG = "SCALEKIT_AUTH['{key}'] should be an absolute https URL, not {value!r}."
W007_HINT = "Scalekit requires https for production redirect URIs."
W008_MSG = (
    "The cache '{alias}' ({backend}) is not shared between processes: concurrent requests of one "
    "session in different processes may both refresh its token, and Scalekit then revokes the "
    "session."
)
W008_HINT = (
    "Use Redis (django.core.cache.backends.redis.RedisCache) in production, or set "
    "SCALEKIT_AUTH['CACHE_ALIAS'] to a shared cache."
)
E009_MSG = "SCALEKIT_AUTH['ROLLOUT_PERCENTAGE'] must be an integer 0-100, not {value!r}."
E009_HINT = (
    "Set SCALEKIT_AUTH['ROLLOUT_PERCENTAGE'] to a whole number such as 100 (everyone) or 10; "
    "once saved, the admin's Rollout settings row overrides it."
)
W010_MSG = "SCALEKIT_AUTH['{key}'] does not come from the {variable} environment variable."
W010_HINT = "Keep secrets out of settings files: read them from the environment."
E011_MSG = "SCALEKIT_AUTH['SCOPES'] must include 'openid'."
E011_HINT = (
    "Add 'openid' to SCALEKIT_AUTH['SCOPES'] (the default is "
    "['openid', 'profile', 'email', 'offline_access']): without it Scalekit issues no ID token "
    "and no login can complete."
)
E013_MSG = (
    f"{BACKEND} (or a subclass of it) is in AUTHENTICATION_BACKENDS but {MIDDLEWARE} is not in "
    "MIDDLEWARE."
)
E013_HINT = (
    "Add it to MIDDLEWARE after SessionMiddleware and AuthenticationMiddleware. Without it, "
    "access tokens of logged-in users are never refreshed or re-checked, request.scalekit is "
    "not set, and the rollout's kill switch does not end Scalekit sessions."
)
E014_MSG = "SCALEKIT_AUTH['CACHE_ALIAS'] is {alias!r}, which is not a cache in CACHES ({known})."
E014_HINT = (
    "Set CACHE_ALIAS to one of the aliases in CACHES (Redis in production), or add that cache: "
    "the JWKS, the refresh locks and the event throttle live in it."
)
E015_MSG = "SCALEKIT_AUTH['WEBHOOK_SECRET'] is not of the form whsec_<base64>: {problem}."
E015_HINT = (
    "Copy the endpoint's signing secret from the Scalekit dashboard (Webhooks) into the "
    "SCALEKIT_WEBHOOK_SECRET environment variable as it is shown, e.g. 'whsec_' followed by "
    "standard base64 (A-Z, a-z, 0-9, '+', '/', '=' padding), with no quotes or whitespace. "
    "Until then every webhook is refused with 401."
)
E016_MSG = "SCALEKIT_AUTH['{key}'] must be an integer of at least {minimum}, not {value!r}."
E016_HINT = {
    "EVENT_THROTTLE_SECONDS": "e.g. 60; 0 writes every refused event (no throttle).",
    "EVENT_RETENTION_DAYS": "e.g. 90: scalekit_auth_purge_events deletes older events.",
}
E017_MSG = "SCALEKIT_AUTH['{key}'] must be a list or tuple of non-empty strings, but {problem}."
E017_HINT = {
    "STAFF_ROLES": "e.g. ['admin'], even for one role: a bare string would be read one "
    "character at a time (roles 'a', 'd', 'm'...). Until it is fixed, logins and membership "
    "webhooks stop with ImproperlyConfigured instead of syncing roles.",
    "SUPERUSER_ROLES": "e.g. ['owner'], even for one role: a bare string would be read one "
    "character at a time (roles 'o', 'w', 'n'...). Until it is fixed, logins and membership "
    "webhooks stop with ImproperlyConfigured instead of syncing roles.",
    "MANAGED_GROUPS": "e.g. ['Administrators', 'Members'], or None for every group named in "
    "ROLE_GROUPS. Until it is fixed, logins and membership webhooks stop with "
    "ImproperlyConfigured instead of syncing roles.",
    "SCOPES": "e.g. ['openid', 'profile', 'email', 'offline_access']: a list, not one "
    "space-separated string.",
}
E018_MSG = (
    "SCALEKIT_AUTH['ROLE_GROUPS'] must map role names to lists of group names, but {problem}."
)
E018_HINT = (
    "e.g. {'admin': ['Administrators'], 'member': ['Members']}: a bare string such as "
    "{'admin': 'Admins'} would create and grant one group per character. Until it is fixed, "
    "logins and membership webhooks stop with ImproperlyConfigured instead of syncing roles."
)
E019_MSG = (
    "SESSION_COOKIE_SAMESITE is {value!r}: browsers send no session cookie on the redirect back "
    "from Scalekit's hosted login, so every login fails with state_mismatch."
)
E019_HINT = (
    "Set SESSION_COOKIE_SAMESITE = 'Lax' (Django's default): the cookie then comes with "
    "top-level navigations such as the callback, and still not with cross-site POSTs."
)

E020_HINT = "Leave REFRESH_LOCK_TIMEOUT out for the default (60 s)."
W021_MSG = (
    "SCALEKIT_AUTH['LEGACY_LOGIN_URL'] is the admin login ({url!r}), which refuses users who are "
    "not staff: after a rollback (the kill switch), and for users a partial rollout keeps off "
    "Scalekit, they would be sent to a login that cannot let them in."
)
W021_HINT = (
    "Point SCALEKIT_AUTH['LEGACY_LOGIN_URL'] at the project's own username/password login view "
    "(e.g. django.contrib.auth.views.LoginView at '/accounts/login/')."
)

ENV_VARS = {"CLIENT_SECRET": "SCALEKIT_CLIENT_SECRET", "WEBHOOK_SECRET": "SCALEKIT_WEBHOOK_SECRET"}


def scalekit_backend_configured() -> bool:
    """Whether AUTHENTICATION_BACKENDS lists ScalekitBackend or a subclass of it."""
    return scalekit_backend_path() is not None


def check_credentials(app_configs: Any = None, **kwargs: Any) -> list:
    missing = [
        key
        for key in ("ENVIRONMENT_URL", "CLIENT_ID", "CLIENT_SECRET")
        if not getattr(app_settings, key)
    ]
    if not missing:
        return []
    return [Error(E001_MSG.format(missing=", ".join(missing)), hint=E001_HINT, id=E001)]


def check_environment_url(app_configs: Any = None, **kwargs: Any) -> list:
    url = app_settings.ENVIRONMENT_URL
    if url and urlsplit(url).scheme != "https":
        return [Error(E002_MSG.format(url=url), hint=E002_HINT, id=E002)]
    return []


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list:
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE not in middleware:
        if scalekit_backend_configured():
            return [Error(E013_MSG, hint=E013_HINT, id=E013)]
        return []
    position = middleware.index(MIDDLEWARE)
    errors = []
    for required in (
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ):
        if required not in middleware[:position]:
            errors.append(
                Error(
                    E003_MSG.format(middleware=MIDDLEWARE, required=required),
                    hint=E003_HINT,
                    id=E003,
                )
            )
    if not scalekit_backend_configured():
        errors.append(Warning(W004_MSG, hint=W004_HINT, id=W004))
    return errors


def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list:
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        return [Error(E005_MSG, hint=E005_HINT, id=E005)]
    return []


def check_session_cookie_samesite(app_configs: Any = None, **kwargs: Any) -> list:
    value = settings.SESSION_COOKIE_SAMESITE
    if isinstance(value, str) and value.lower() == "strict":
        return [Error(E019_MSG.format(value=value), hint=E019_HINT, id=E019)]
    return []


def check_refresh_lock_timeout(app_configs: Any = None, **kwargs: Any) -> list:
    from .session import lock_timeout

    try:
        lock_timeout()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint=E020_HINT, id=E020)]
    return []


def admin_login_paths() -> set[str]:
    """The paths of the admin's login page: where ``admin:login`` is routed, and the admin's
    usual ``/admin/login/`` (LEGACY_LOGIN_URL's default)."""
    paths = {"/admin/login/"}
    # No admin routed, or a URLconf that does not load (Django's own checks report it).
    with contextlib.suppress(NoReverseMatch, ImproperlyConfigured, ImportError):
        paths.add(reverse("admin:login"))
    return paths


def check_legacy_login_url(app_configs: Any = None, **kwargs: Any) -> list:
    if not scalekit_backend_configured():
        return []
    url = app_settings.LEGACY_LOGIN_URL
    if isinstance(url, str) and urlsplit(url).path in admin_login_paths():
        return [Warning(W021_MSG.format(url=url), hint=W021_HINT, id=W021)]
    return []


def check_scopes(app_configs: Any = None, **kwargs: Any) -> list:
    scopes = app_settings.SCOPES
    if names_problem(scopes):
        return []  # check_setting_shapes reports it (E017); "openid" in a string would mislead
    errors = []
    if "openid" not in scopes:
        errors.append(Error(E011_MSG, hint=E011_HINT, id=E011))
    if "offline_access" not in scopes:
        errors.append(Warning(W006_MSG, hint=W006_HINT, id=W006))
    return errors


def check_uris(app_configs: Any = None, **kwargs: Any) -> list:
    errors = []
    for key in ("REDIRECT_URI", "POST_LOGOUT_REDIRECT_URI"):
        value = getattr(app_settings, key)
        if value and (urlsplit(value).scheme != "https" or not urlsplit(value).netloc):
            errors.append(Warning(W007_MSG.format(key=key, value=value), hint=W007_HINT, id=W007))
    return errors


def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list:
    alias = app_settings.CACHE_ALIAS
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                W008_MSG.format(alias=alias, backend=backend.rsplit(".", 1)[-1]),
                hint=W008_HINT,
                id=W008,
            )
        ]
    return []


def check_cache_alias(app_configs: Any = None, **kwargs: Any) -> list:
    alias = app_settings.CACHE_ALIAS
    if alias in settings.CACHES:
        return []
    known = ", ".join(repr(a) for a in settings.CACHES) or "none"
    return [Error(E014_MSG.format(alias=alias, known=known), hint=E014_HINT, id=E014)]


def webhook_secret_problem(secret: str) -> str:
    """What is wrong with the shape of ``secret`` ('' when nothing), never quoting it."""
    prefix, separator, encoded = secret.partition("_")
    if not separator or prefix != "whsec":
        return "it does not start with 'whsec_'"
    if not encoded:
        return "nothing follows 'whsec_'"
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return (
            f"the {len(encoded)} characters after 'whsec_' are not standard base64 "
            "(a stray character, whitespace, quotes or missing '=' padding?)"
        )
    if not key:
        return "the part after 'whsec_' decodes to an empty key"
    return ""


def check_webhook_secret(app_configs: Any = None, **kwargs: Any) -> list:
    secret = app_settings.WEBHOOK_SECRET
    if not secret:
        return []  # webhooks off: the endpoint answers 503
    problem = webhook_secret_problem(str(secret))
    if not problem:
        return []
    return [Error(E015_MSG.format(problem=problem), hint=E015_HINT, id=E015)]


def check_event_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors = []
    for key, minimum in (("EVENT_THROTTLE_SECONDS", 0), ("EVENT_RETENTION_DAYS", 1)):
        value = getattr(app_settings, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            errors.append(
                Error(
                    E016_MSG.format(key=key, minimum=minimum, value=value),
                    hint=E016_HINT[key],
                    id=E016,
                )
            )
    return errors


def check_rollout(app_configs: Any = None, **kwargs: Any) -> list:
    value = app_settings.ROLLOUT_PERCENTAGE
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        return [Error(E009_MSG.format(value=value), hint=E009_HINT, id=E009)]
    return []


def check_secrets_from_environment(app_configs: Any = None, **kwargs: Any) -> list:
    errors = []
    for key, variable in ENV_VARS.items():
        value = getattr(app_settings, key)
        if value and value != os.environ.get(variable):
            errors.append(
                Warning(W010_MSG.format(key=key, variable=variable), hint=W010_HINT, id=W010)
            )
    return errors


def check_setting_shapes(app_configs: Any = None, **kwargs: Any) -> list:
    errors = []
    for key in ("STAFF_ROLES", "SUPERUSER_ROLES", "MANAGED_GROUPS", "SCOPES"):
        value = getattr(app_settings, key)
        if key == "MANAGED_GROUPS" and value is None:
            continue
        problem = names_problem(value)
        if problem:
            errors.append(
                Error(E017_MSG.format(key=key, problem=problem), hint=E017_HINT[key], id=E017)
            )
    return errors


def check_role_groups(app_configs: Any = None, **kwargs: Any) -> list:
    problem = role_groups_problem(app_settings.ROLE_GROUPS)
    if problem:
        return [Error(E018_MSG.format(problem=problem), hint=E018_HINT, id=E018)]
    return []


ALL = [
    check_credentials,
    check_environment_url,
    check_middleware,
    check_session_engine,
    check_scopes,
    check_uris,
    check_rollout,
    check_secrets_from_environment,
    check_setting_shapes,
    check_role_groups,
    check_session_cookie_samesite,
    check_cache_alias,
    check_webhook_secret,
    check_event_settings,
    check_refresh_lock_timeout,
    check_legacy_login_url,
]
DEPLOY = [check_shared_cache]
