"""System checks for ``scalekit_auth`` settings: one function per rule, stable ids, hints.

Ids are stable: never renumber one, add the next number instead.

- ``scalekit_auth.E001``: ENVIRONMENT_URL, CLIENT_ID or CLIENT_SECRET is missing.
- ``scalekit_auth.E002``: ENVIRONMENT_URL is not an https URL.
- ``scalekit_auth.E003``: ScalekitSessionMiddleware comes before SessionMiddleware or
  AuthenticationMiddleware (or one of them is missing).
- ``scalekit_auth.W004``: ScalekitSessionMiddleware is installed but ScalekitBackend is not in
  AUTHENTICATION_BACKENDS.
- ``scalekit_auth.E005``: the signed_cookies session engine would put tokens in the browser.
- ``scalekit_auth.W006``: SCOPES has no ``offline_access`` (no refresh token).
- ``scalekit_auth.W007``: REDIRECT_URI or POST_LOGOUT_REDIRECT_URI is not an absolute https URL.
- ``scalekit_auth.W008`` (deploy): the cache of CACHE_ALIAS is not shared between processes.
- ``scalekit_auth.E009``: ROLLOUT_PERCENTAGE is not an integer 0-100.
- ``scalekit_auth.W010``: CLIENT_SECRET or WEBHOOK_SECRET does not come from the environment.
- ``scalekit_auth.E011``: SCOPES has no ``openid``.
- ``scalekit_auth.W012``: ROLE_GROUPS does not map role names to lists of group names.
- ``scalekit_auth.E013``: ScalekitBackend is in AUTHENTICATION_BACKENDS but
  ScalekitSessionMiddleware is not in MIDDLEWARE (tokens never refreshed, kill switch ignored).
- ``scalekit_auth.E014``: CACHE_ALIAS names no cache in CACHES.
- ``scalekit_auth.E015``: WEBHOOK_SECRET is set but is not ``whsec_<standard base64>``.
- ``scalekit_auth.E016``: EVENT_THROTTLE_SECONDS or EVENT_RETENTION_DAYS is not a valid integer.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning

from .conf import app_settings

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
W012 = "scalekit_auth.W012"
E013 = "scalekit_auth.E013"
E014 = "scalekit_auth.E014"
E015 = "scalekit_auth.E015"
E016 = "scalekit_auth.E016"

E009_HINT = (
    "Set SCALEKIT_AUTH['ROLLOUT_PERCENTAGE'] to a whole number such as 100 (everyone) or 10; "
    "once saved, the admin's Rollout settings row overrides it."
)
E011_HINT = (
    "Add 'openid' to SCALEKIT_AUTH['SCOPES'] (the default is "
    "['openid', 'profile', 'email', 'offline_access']): without it Scalekit issues no ID token "
    "and no login can complete."
)
E013_MSG = f"{BACKEND} is in AUTHENTICATION_BACKENDS but {MIDDLEWARE} is not in MIDDLEWARE."
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

ENV_VARS = {"CLIENT_SECRET": "SCALEKIT_CLIENT_SECRET", "WEBHOOK_SECRET": "SCALEKIT_WEBHOOK_SECRET"}


def check_credentials(app_configs: Any = None, **kwargs: Any) -> list:
    missing = [
        key
        for key in ("ENVIRONMENT_URL", "CLIENT_ID", "CLIENT_SECRET")
        if not getattr(app_settings, key)
    ]
    if not missing:
        return []
    return [
        Error(
            f"Scalekit is not configured: SCALEKIT_AUTH is missing {', '.join(missing)}.",
            hint="Set SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET in the "
            "environment (Scalekit dashboard > Developers > Settings).",
            id=E001,
        )
    ]


def check_environment_url(app_configs: Any = None, **kwargs: Any) -> list:
    url = app_settings.ENVIRONMENT_URL
    if url and urlsplit(url).scheme != "https":
        return [
            Error(
                f"SCALEKIT_AUTH['ENVIRONMENT_URL'] must be an https URL, not {url!r}.",
                hint="The SDK's gRPC channel always uses TLS; an http URL cannot work.",
                id=E002,
            )
        ]
    return []


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list:
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE not in middleware:
        if BACKEND in settings.AUTHENTICATION_BACKENDS:
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
                    f"{MIDDLEWARE} must come after {required}.",
                    hint="Move it below SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE.",
                    id=E003,
                )
            )
    if BACKEND not in settings.AUTHENTICATION_BACKENDS:
        errors.append(
            Warning(
                f"{MIDDLEWARE} is installed but {BACKEND} is not in AUTHENTICATION_BACKENDS.",
                hint="Add it, or the Scalekit login cannot log anyone in.",
                id=W004,
            )
        )
    return errors


def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list:
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        return [
            Error(
                "The signed_cookies session engine would put Scalekit tokens in the browser.",
                hint="Use a server-side engine: cached_db (recommended), db or cache.",
                id=E005,
            )
        ]
    return []


def check_scopes(app_configs: Any = None, **kwargs: Any) -> list:
    scopes = list(app_settings.SCOPES)
    errors = []
    if "openid" not in scopes:
        errors.append(
            Error("SCALEKIT_AUTH['SCOPES'] must include 'openid'.", hint=E011_HINT, id=E011)
        )
    if "offline_access" not in scopes:
        errors.append(
            Warning(
                "SCALEKIT_AUTH['SCOPES'] has no 'offline_access': no refresh token is issued, so "
                "users are logged out when their access token expires (5 minutes by default).",
                hint="Add 'offline_access' to SCOPES.",
                id=W006,
            )
        )
    return errors


def check_uris(app_configs: Any = None, **kwargs: Any) -> list:
    errors = []
    for key in ("REDIRECT_URI", "POST_LOGOUT_REDIRECT_URI"):
        value = getattr(app_settings, key)
        if value and (urlsplit(value).scheme != "https" or not urlsplit(value).netloc):
            errors.append(
                Warning(
                    f"SCALEKIT_AUTH['{key}'] should be an absolute https URL, not {value!r}.",
                    hint="Scalekit requires https for production redirect URIs.",
                    id=W007,
                )
            )
    return errors


def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list:
    backend = settings.CACHES.get(app_settings.CACHE_ALIAS, {}).get("BACKEND", "")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                f"The cache '{app_settings.CACHE_ALIAS}' ({backend.rsplit('.', 1)[-1]}) is not shared "
                "between processes: concurrent requests of one session in different processes may "
                "both refresh its token, and Scalekit then revokes the session.",
                hint="Use Redis (django.core.cache.backends.redis.RedisCache) in production, or set "
                "SCALEKIT_AUTH['CACHE_ALIAS'] to a shared cache.",
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
    if not isinstance(value, int) or not 0 <= value <= 100:
        return [
            Error(
                f"SCALEKIT_AUTH['ROLLOUT_PERCENTAGE'] must be an integer 0-100, not {value!r}.",
                hint=E009_HINT,
                id=E009,
            )
        ]
    return []


def check_secrets_from_environment(app_configs: Any = None, **kwargs: Any) -> list:
    errors = []
    for key, variable in ENV_VARS.items():
        value = getattr(app_settings, key)
        if value and value != os.environ.get(variable):
            errors.append(
                Warning(
                    f"SCALEKIT_AUTH['{key}'] does not come from the {variable} environment variable.",
                    hint="Keep secrets out of settings files: read them from the environment.",
                    id=W010,
                )
            )
    return errors


def check_role_groups(app_configs: Any = None, **kwargs: Any) -> list:
    mapping = app_settings.ROLE_GROUPS
    valid = isinstance(mapping, dict) and all(
        isinstance(groups, (list, tuple)) and all(isinstance(g, str) for g in groups)
        for groups in mapping.values()
    )
    if valid:
        return []
    return [
        Warning(
            "SCALEKIT_AUTH['ROLE_GROUPS'] must map role names to lists of group names.",
            hint="e.g. {'admin': ['Administrators'], 'member': ['Members']}",
            id=W012,
        )
    ]


ALL = [
    check_credentials,
    check_environment_url,
    check_middleware,
    check_session_engine,
    check_scopes,
    check_uris,
    check_rollout,
    check_secrets_from_environment,
    check_role_groups,
    check_cache_alias,
    check_webhook_secret,
    check_event_settings,
]
DEPLOY = [check_shared_cache]
