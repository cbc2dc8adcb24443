"""The app settings of ``scalekit_auth``: every key of ``settings.SCALEKIT_AUTH`` and its default.

Read them through ``app_settings``::

    from scalekit_auth.conf import app_settings
    app_settings.CLIENT_ID

Values are read from ``django.conf.settings`` on every access, so ``override_settings`` works
and nothing is ever written back into ``settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        "Path of an extra CA bundle to trust (the emulator's ca.pem); empty for the real service. "
        "Added to what the process trusted (certifi's bundle when nothing else), so the "
        "project's other HTTPS calls keep working; read once per process by gRPC.",
    )

    # Login and logout.
    REDIRECT_URI = Setting(
        "",
        "Absolute callback URL registered in Scalekit; empty builds it from the request and the "
        "scalekit_auth:callback route (fine behind a correct proxy setup, explicit is safer).",
    )
    POST_LOGOUT_REDIRECT_URI = Setting(
        "", "Absolute URL Scalekit sends the browser to after logout (registered in Scalekit)."
    )
    LOGIN_REDIRECT_URL = Setting(
        None, "Where a login without a valid `next` lands; None uses settings.LOGIN_REDIRECT_URL."
    )
    LEGACY_LOGIN_URL = Setting(
        "/admin/login/",
        "The legacy login page, for users the rollout keeps off Scalekit and after the kill "
        "switch: set it to the project's own password login; the admin's (the default) refuses "
        "users who are not staff (W021).",
    )
    SCOPES = Setting(
        ["openid", "profile", "email", "offline_access"],
        "Scopes asked at login; offline_access is what gets a refresh token.",
    )
    LOGIN_STATE_TTL = Setting(
        600, "Seconds a started login (state, nonce, PKCE verifier) stays valid."
    )

    # Users: finding, linking, creating.
    CREATE_USERS = Setting(True, "Create a Django user at first login when none can be linked.")
    LINK_BY_EXTERNAL_ID = Setting(
        True,
        "Link by the external id claim (xuid): the legacy primary key the migration stored.",
    )
    EXTERNAL_ID_FIELD = Setting(
        "pk", "The user model field the external id holds (the migration exports the pk)."
    )
    LINK_BY_EMAIL = Setting(
        False, "Link an existing user by email (only when the email is verified). Off by default."
    )
    SYNC_PROFILE = Setting(True, "Copy email and names from the ID token on every login.")

    # Roles to groups and flags.
    ROLE_GROUPS = Setting(
        {},
        "Role name -> list of Django group names given to members with that role, "
        "e.g. {'admin': ['Administrators']}. Groups are created when missing. Any other shape is "
        "refused (E018).",
    )
    MANAGED_GROUPS = Setting(
        None,
        "List of the groups that role sync may remove; None means every group named in "
        "ROLE_GROUPS. Groups outside it are left alone, so groups given by hand survive logins.",
    )
    STAFF_ROLES = Setting(
        [],
        "List of the roles that make a user is_staff (admin access); a bare string is refused "
        "(E017).",
    )
    SUPERUSER_ROLES = Setting(
        [], "List of the roles that make a user is_superuser; a bare string is refused (E017)."
    )

    # Tokens.
    TOKEN_LEEWAY_SECONDS = Setting(10, "Clock skew allowed when checking exp/iat/nbf.")
    REFRESH_BEFORE_SECONDS = Setting(
        30, "Refresh the access token when it expires within this many seconds."
    )
    REFRESH_LOCK_TIMEOUT = Setting(
        60,
        "Seconds the per-session refresh lock lives. Must exceed the longest refresh (50 s: the "
        "SDK's token request, 10 s connect + 30 s read, then a JWKS fetch, 5 s + 5 s), or a "
        "second request could reuse the refresh token; 50 or less is refused.",
    )
    JWKS_CACHE_SECONDS = Setting(
        3600,
        "How long the JWKS stays in the Django cache; each process's copy of it lives no longer, "
        "so a key withdrawn from the JWKS stops verifying within this time.",
    )
    JWKS_MIN_REFETCH_SECONDS = Setting(
        5,
        "At most one JWKS fetch in this many seconds per process for the unknown kids of "
        "bearer tokens (forged kids cannot flood Scalekit). Tokens from Scalekit's token "
        "endpoint refetch at once.",
    )
    CLAIMS_CACHE_SIZE = Setting(10_000, "Verified bearer tokens kept in memory, per process.")
    CACHE_ALIAS = Setting(
        "default",
        "Django cache for the JWKS, the refresh locks and the event throttle (Redis in "
        "production).",
    )

    # Organizations.
    ORGANIZATION_FIELD = Setting(
        "organization_id",
        "Queryset field holding the Scalekit organization id, for scope_to_organization().",
    )

    # Webhooks.
    WEBHOOK_SECRET = Setting(
        "", "Signing secret of the webhook endpoint (whsec_...), from the environment."
    )
    WEBHOOK_TOLERANCE_SECONDS = Setting(300, "Age beyond which a webhook is refused as a replay.")

    # The auth event log.
    EVENT_THROTTLE_SECONDS = Setting(
        60,
        "At most one AuthEvent row per (kind, reason, client IP) of refused events in this many "
        "seconds (a flood of bad tokens or forged webhooks writes one row, not one per request); "
        "successes are always written. 0 writes every refused event.",
    )
    EVENT_RETENTION_DAYS = Setting(
        90,
        "Auth events older than this many days are deleted by scalekit_auth_purge_events "
        "(and scalekit_auth.events.purge(), to schedule).",
    )

    # Rollout (defaults; the admin-editable RolloutSettings row wins once saved).
    ROLLOUT_PERCENTAGE = Setting(100, "Share of users (0-100) who log in through Scalekit.")
    ROLLOUT_CACHE_SECONDS = Setting(
        5, "How long a process may keep the rollout row before reading it again."
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


def _shown(value: Any) -> str:
    """``value`` named by its type and a short repr, for error messages (no secrets pass here)."""
    text = repr(value)
    return f"a {type(value).__name__} ({text if len(text) <= 60 else text[:57] + '...'})"


def names_problem(value: Any) -> str:
    """What keeps ``value`` from being a list or tuple of non-empty strings ('' when nothing).

    A bare string is refused: ``"admin"`` would be read as the roles ``a``, ``d``, ``m``...
    """
    if not isinstance(value, (list, tuple)):
        return f"it is {_shown(value)}"
    for item in value:
        if not isinstance(item, str):
            return f"it holds {_shown(item)}"
        if not item:
            return "it holds an empty string"
    return ""


def role_groups_problem(value: Any) -> str:
    """What keeps ``value`` from mapping role names to lists of group names ('' when nothing)."""
    if not isinstance(value, Mapping):
        return f"it is {_shown(value)}"
    for role, groups in value.items():
        if not isinstance(role, str) or not role:
            return f"the key {role!r} is not a role name"
        problem = names_problem(groups)
        if problem:
            return f"the groups of {role!r}: {problem}"
    return ""
