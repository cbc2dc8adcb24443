"""The app settings of ``scalekit_auth``: every key of ``settings.SCALEKIT_AUTH`` and its default.

Read them through ``app_settings``::

    from scalekit_auth.conf import app_settings
    app_settings.CLIENT_ID

Values are read from ``django.conf.settings`` on every access, so ``override_settings`` works
and nothing is ever written back into ``settings``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

_MISSING = object()


class Setting:
    """One key of ``SCALEKIT_AUTH`` with its default; the docstring documents it."""

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
    namespace = "SCALEKIT_AUTH"

    # Connection to Scalekit (secrets only from the environment, see config/settings.py).
    ENVIRONMENT_URL = Setting("", "The Scalekit environment URL, e.g. https://acme.scalekit.com.")
    CLIENT_ID = Setting("", "The API client id (skc_...).")
    CLIENT_SECRET = Setting("", "The API client secret. Never logged or shown.")
    CA_BUNDLE = Setting(
        "",
        "Path of an extra CA bundle to trust (the emulator's ca.pem); empty for the real service.",
    )

    @classmethod
    def keys(cls) -> list[str]:
        return [name for name, value in vars(cls).items() if isinstance(value, Setting)]


app_settings = AppSettings()


def reload_settings(*, setting: str, **kwargs: Any) -> None:
    """Drop what was built from the old settings when a test overrides ``SCALEKIT_AUTH``."""
    if setting == AppSettings.namespace:
        from .client import reset_client

        reset_client()
