"""The app settings of ``readiness``: every key of ``settings.READINESS`` and its default.

Read them through ``app_settings``::

    from readiness.conf import app_settings
    app_settings.MAX_SESSION_AGE

Values are read from ``django.conf.settings`` on every access, so ``override_settings`` works and
nothing is written back into ``settings``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

_MISSING = object()


class Setting:
    """One key of ``READINESS`` with its default; the docstring documents it."""

    def __init__(self, default: Any, doc: str) -> None:
        self.default = default
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = getattr(settings, obj.namespace, {}).get(self.name, _MISSING)
        if value is _MISSING:
            return self.default() if callable(self.default) else self.default
        return value


class AppSettings:
    namespace = "READINESS"

    MAX_SESSION_AGE = Setting(
        43200, "Longest accepted SESSION_COOKIE_AGE in seconds (12 h, ASVS level 2)."
    )
    MAX_ACCESS_TOKEN_LIFETIME = Setting(
        900,
        "Longest accepted lifetime in seconds of the access tokens Scalekit issues at login "
        "(Scalekit's default is 300).",
    )
    MAX_TOKEN_LEEWAY = Setting(
        60, "Longest accepted SCALEKIT_AUTH['TOKEN_LEEWAY_SECONDS'] for token expiry checks."
    )
    PROTECTED_URLS = Setting(
        list,
        "Pages that need a login: a list of (path, permission or None). Probed anonymously and "
        "with a user lacking the permission.",
    )
    PUBLIC_URL = Setting(
        "",
        "The public https URL of the site (e.g. https://app.example.com); network probes use it.",
    )
    BEHIND_TLS_PROXY = Setting(
        False, "True when TLS ends at a proxy or load balancer in front of Django."
    )
    NETWORK_TIMEOUT = Setting(5.0, "Seconds each network probe may take (capped at 5).")
    NETWORK_HISTORY = Setting(
        5, "How many past network probe results the reachability history check looks at."
    )
    NETWORK_P95_MS = Setting(1000, "Highest accepted p95 latency of past network probes, in ms.")
    SCALEKIT_SETTING_ALIASES = Setting(
        lambda: {
            "ENVIRONMENT_URL": ["SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_ENV_URL", "SCALEKIT_DOMAIN"],
            "CLIENT_ID": ["SCALEKIT_CLIENT_ID"],
            "CLIENT_SECRET": ["SCALEKIT_CLIENT_SECRET"],
            "WEBHOOK_SECRET": ["SCALEKIT_WEBHOOK_SECRET"],
        },
        "For each SCALEKIT_AUTH key, the environment variables it may be read from.",
    )
    HEALTH_URL_NAME = Setting(
        "", "URL name of the health endpoint (django-health-check, watchman)."
    )
    ADMIN_PORTAL_URL_NAME = Setting(
        "", "URL name of the view that hands out admin-portal links; empty when there is none."
    )
    AUTH_LOGGER = Setting("scalekit_auth", "Logger the authentication app writes its events to.")
    ERROR_TRACKER_ENV = Setting(
        lambda: ["SENTRY_DSN", "ROLLBAR_ACCESS_TOKEN", "BUGSNAG_API_KEY", "HONEYBADGER_API_KEY"],
        "Environment variables that configure an error tracker (any one is enough).",
    )
    CUSTOM_SCALEKIT_DOMAINS = Setting(
        list,
        "Custom domains confirmed to be production Scalekit environments. An unlisted custom "
        "domain fails A10 until it is listed here or A10 is signed off.",
    )

    @classmethod
    def keys(cls) -> list[str]:
        return [name for name, value in vars(cls).items() if isinstance(value, Setting)]


app_settings = AppSettings()
