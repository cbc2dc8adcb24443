"""What ``readiness`` relies on from ``scalekit_auth`` and ``migration``, read defensively.

Both apps are built alongside this one. Every probe that depends on them goes through this module,
so a missing piece gives a clear failing result ("login view scalekit_auth:login is not
installed") rather than an exception.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Model
from django.urls import NoReverseMatch, reverse

LOGIN_URL_NAME = "scalekit_auth:login"
CALLBACK_URL_NAME = "scalekit_auth:callback"
LOGOUT_URL_NAME = "scalekit_auth:logout"
WEBHOOK_URL_NAME = "scalekit_auth:webhook"
SESSION_MIDDLEWARE = "scalekit_auth.middleware.ScalekitSessionMiddleware"
BACKEND = "scalekit_auth.backends.ScalekitBackend"

#: The defaults the ``scalekit_auth`` contract gives for keys a project may leave out.
CONTRACT_DEFAULTS: dict[str, Any] = {
    "ENVIRONMENT_URL": "",
    "CLIENT_ID": "",
    "CLIENT_SECRET": "",
    "CA_BUNDLE": "",
    "REDIRECT_URI": "",
    "POST_LOGOUT_REDIRECT_URI": "",
    "SCOPES": ["openid", "profile", "email", "offline_access"],
    "WEBHOOK_SECRET": "",
    "TOKEN_LEEWAY_SECONDS": None,
    "ROLLOUT_PERCENTAGE": None,
}


def scalekit_setting(name: str) -> Any:
    """One key of ``SCALEKIT_AUTH`` as ``scalekit_auth`` sees it (its own defaults included)."""
    try:
        from scalekit_auth.conf import app_settings
    except ImportError:
        app_settings = None
    if app_settings is not None:
        try:
            return getattr(app_settings, name)
        except AttributeError:
            pass
    raw = getattr(settings, "SCALEKIT_AUTH", {}) or {}
    return raw.get(name, CONTRACT_DEFAULTS.get(name))


def url_path(name: str, **kwargs: Any) -> str | None:
    """The path of a named URL, or None when the URL is not installed."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def get_model(app_label: str, model_name: str) -> type[Model] | None:
    """An installed model class, or None when the app or model does not exist (yet)."""
    try:
        return apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None


def app_installed(name: str) -> bool:
    return apps.is_installed(name)
