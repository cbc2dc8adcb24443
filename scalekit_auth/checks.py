"""System checks for ``scalekit_auth`` settings: one function per rule, stable ids, hints."""

from __future__ import annotations

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
        errors.append(Error("SCALEKIT_AUTH['SCOPES'] must include 'openid'.", id=E011))
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


def check_rollout(app_configs: Any = None, **kwargs: Any) -> list:
    value = app_settings.ROLLOUT_PERCENTAGE
    if not isinstance(value, int) or not 0 <= value <= 100:
        return [
            Error(
                f"SCALEKIT_AUTH['ROLLOUT_PERCENTAGE'] must be an integer 0-100, not {value!r}.",
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
]
DEPLOY = [check_shared_cache]
