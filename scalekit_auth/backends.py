"""The authentication backend: from verified Scalekit claims to a real Django user.

The user is found, in this order, by:
1. the linked Scalekit user id (``ScalekitIdentity.scalekit_user_id`` = ``sub``);
2. the external id claim ``xuid``, the legacy primary key the migration stored, when
   ``LINK_BY_EXTERNAL_ID`` (so a migrated user keeps the same Django account and groups);
3. the email, only when it is verified and ``LINK_BY_EMAIL`` is on (off by default: an email
   alone is a weak proof of being the same person);
4. otherwise a new user is created, when ``CREATE_USERS``.
Then names and email are synced (``SYNC_PROFILE``), the identity row is updated and the
``roles`` claim is mapped onto groups and flags. Permission checks are Django's own
(``ModelBackend``), through the groups.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .conf import app_settings
from .models import ScalekitIdentity
from .roles import sync_roles

logger = logging.getLogger("scalekit_auth")


class LinkRefused(Exception):
    """No Django user may be used for these claims; the message says why (for the event log)."""


class ScalekitBackend(ModelBackend):
    """Authenticates ``authenticate(request, scalekit_claims=...)`` calls only; username and
    password logins fall through to the other backends."""

    def authenticate(
        self, request: Any, scalekit_claims: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        if scalekit_claims is None:
            return None
        user = resolve_user(scalekit_claims)
        return user if self.user_can_authenticate(user) else None


def scalekit_backend_path() -> str | None:
    """The first entry of AUTHENTICATION_BACKENDS that is ``ScalekitBackend`` or a subclass of
    it, as written there (Django only keeps a login whose backend path is listed), else None.
    Entries that cannot be imported are skipped: Django reports them when it loads them."""
    for path in settings.AUTHENTICATION_BACKENDS:
        try:
            backend = import_string(path)
        except ImportError:
            continue
        if isinstance(backend, type) and issubclass(backend, ScalekitBackend):
            return path
    return None


def resolve_user(claims: dict[str, Any]) -> Any:
    """Find, link or create the user for verified ``claims`` (ID token claims merged with the
    access token's ``roles``/``oid``); raise ``LinkRefused`` when the policy forbids it.

    Two first requests of one Scalekit user at once (a single-page app's parallel API calls)
    both try to link; the loser's savepoint is rolled back, user creation included, and it
    uses the link the winner made.
    """
    sub = claims["sub"]
    identity = _identity(sub)
    if identity is None:
        chosen = None
        try:
            with transaction.atomic():
                chosen, linked_by = _link_or_create(claims)
                identity = ScalekitIdentity.objects.create(
                    user=chosen, scalekit_user_id=sub, linked_by=linked_by
                )
        except IntegrityError as exc:
            identity = _identity(sub)
            if identity is None:
                owner = f"Django user {chosen.pk}" if chosen is not None else "the Django user"
                raise LinkRefused(f"{owner} is already linked to another Scalekit user") from exc
    with transaction.atomic():
        _sync(identity.user, identity, claims)
    return identity.user


def _identity(sub: str) -> ScalekitIdentity | None:
    return ScalekitIdentity.objects.select_related("user").filter(scalekit_user_id=sub).first()


def _link_or_create(claims: dict[str, Any]) -> tuple[Any, str]:
    User = get_user_model()  # noqa: N806
    external_id = claims.get("xuid")
    if external_id and app_settings.LINK_BY_EXTERNAL_ID:
        field = app_settings.EXTERNAL_ID_FIELD
        try:
            user = User._default_manager.filter(**{field: external_id}).first()
        except (ValueError, ValidationError):
            user = None  # an external id that cannot be a value of that field
        if user is not None:
            return user, "external_id"
    email = (claims.get("email") or "").strip()
    if email and app_settings.LINK_BY_EMAIL:
        if not claims.get("email_verified"):
            raise LinkRefused(f"email {email} is not verified; not linking by email")
        email_field = User.get_email_field_name()
        matches = list(User._default_manager.filter(**{f"{email_field}__iexact": email})[:2])
        if len(matches) > 1:
            raise LinkRefused(f"several Django users have the email {email}; link them by hand")
        if matches:
            return matches[0], "email"
    if not app_settings.CREATE_USERS:
        raise LinkRefused("no linked Django user and CREATE_USERS is off")
    return _create_user(claims), "created"


def _create_user(claims: dict[str, Any]) -> Any:
    User = get_user_model()  # noqa: N806
    email = (claims.get("email") or "").strip()
    base = (email or claims["sub"])[: User._meta.get_field(User.USERNAME_FIELD).max_length]
    username, n = base, 1
    while User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists():
        n += 1
        username = f"{base[:140]}-{n}"
    fields = {User.USERNAME_FIELD: username}
    if email and User.get_email_field_name() != User.USERNAME_FIELD:
        fields[User.get_email_field_name()] = email
    user = User(**fields)
    user.set_unusable_password()
    user.save()
    return user


def _sync(user: Any, identity: ScalekitIdentity, claims: dict[str, Any]) -> None:
    changed = False
    if app_settings.SYNC_PROFILE:
        email_field = user.get_email_field_name()
        for field, value in (
            (email_field, claims.get("email")),
            ("first_name", claims.get("given_name")),
            ("last_name", claims.get("family_name")),
        ):
            if value and hasattr(user, field) and getattr(user, field) != value:
                setattr(user, field, value)
                changed = True
    roles = list(claims.get("roles") or [])
    changed |= sync_roles(user, roles)
    if changed:
        user.save()
    identity.organization_id = claims.get("oid", "")
    identity.external_id = claims.get("xuid", "")
    identity.external_organization_id = claims.get("xoid", "")
    identity.roles = roles
    identity.last_login_at = timezone.now()
    issued = _issued_at(claims)
    if issued is not None:
        # The token states the roles (and profile) as of its issue: a webhook that happened
        # before it, delivered late, must not overwrite them.
        identity.roles_event_at = max(filter(None, (identity.roles_event_at, issued)))
        if app_settings.SYNC_PROFILE:
            identity.profile_event_at = max(filter(None, (identity.profile_event_at, issued)))
    identity.save()


def _issued_at(claims: dict[str, Any]) -> datetime | None:
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        return None
    return datetime.fromtimestamp(iat, tz=UTC)
