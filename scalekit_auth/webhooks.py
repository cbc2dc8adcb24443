"""The webhook endpoint: Scalekit's events about users and memberships, applied to Django users.

Signatures are checked the Standard Webhooks way, as the SDK's ``verify_webhook_payload`` does
(HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed by the base64 part of the
``whsec_`` secret), computed here so that no client (and no network call) is needed. Events
older or newer than ``WEBHOOK_TOLERANCE_SECONDS`` are refused as replays, and an event id seen
before is acknowledged without being applied again (Scalekit may deliver twice).

An event is recorded (``WebhookEvent``) and applied in one transaction. When applying fails
(Scalekit could not be asked, a database error...) nothing is kept and the answer is a 5xx, so
Scalekit delivers the event again; the reason goes to the auth event log. Deliveries are not
ordered: each kind of state a webhook sets on a user (roles, active or not, profile) remembers
the ``occurred_at`` of the event that last set it, and an older event does not overwrite it.

What the events do:

- ``user.organization_membership_created`` / ``_updated``: the roles of the membership (read
  from ``user.membership``, else ``user.memberships``) become the user's groups and flags, when
  the membership is in the organization of the user's last login. An event without that
  membership leaves the roles alone (and says so in the log). A created membership brings back
  a user whom a webhook deactivated.
- ``user.organization_membership_deleted``: clears the roles when it is the organization of the
  last login; deactivates the user only when no membership is left, read from the event when it
  lists the remaining ones, else asked to Scalekit.
- ``user.updated`` / ``user.deleted`` (not in Scalekit's published list, handled if sent): email
  and names; deactivation.
- ``organization.directory.user_updated`` / ``_deleted`` (SCIM): a directory user has its own id
  (``diruser_...``) and no Scalekit user id, so it is matched by email to the one linked user
  whose last login was through that organization. Updated copies the names; deleted deactivates
  only when Scalekit has no membership left for the user, as above.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from google.protobuf.json_format import MessageToDict
from scalekit.common.exceptions import ScalekitNotFoundException, ScalekitServerException

from . import events
from .client import get_client
from .conf import app_settings
from .models import ScalekitIdentity, WebhookEvent
from .roles import sync_roles

logger = logging.getLogger("scalekit_auth")

MEMBERSHIP_CREATED = "user.organization_membership_created"
MEMBERSHIP_UPDATED = "user.organization_membership_updated"
MEMBERSHIP_DELETED = "user.organization_membership_deleted"


class SignatureError(Exception):
    pass


class EventError(ValueError):
    """The event cannot be applied as sent: the message names the field. Answered 400."""


class ScalekitUnreachable(Exception):
    """Scalekit could not say what the event needs. Answered 503, so Scalekit delivers again."""


def verify_signature(secret: str, headers: Any, body: bytes, now: float | None = None) -> None:
    """Raise ``SignatureError`` unless ``body`` was signed with ``secret`` recently."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not an integer") from exc
    if abs((now or time.time()) - sent_at) > app_settings.WEBHOOK_TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is outside the tolerance (a replay?)")
    try:
        key = base64.b64decode(secret.split("_", 1)[1])
    except (IndexError, binascii.Error) as exc:
        raise SignatureError("the configured webhook secret is not whsec_<base64>") from exc
    expected = hmac.new(key, f"{msg_id}.{sent_at}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            if hmac.compare_digest(base64.b64decode(value), expected):
                return
        except binascii.Error:
            continue
    raise SignatureError("no valid v1 signature")


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    secret = app_settings.WEBHOOK_SECRET
    if not secret:
        return JsonResponse({"detail": "webhooks are not configured"}, status=503)
    try:
        verify_signature(secret, request.headers, request.body)
    except SignatureError as exc:
        events.record("webhook", False, f"rejected: {exc}", request=request)
        return JsonResponse({"detail": str(exc)}, status=401)
    try:
        payload = json.loads(request.body)
        event_id, event_type = payload["id"], payload["type"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"detail": "the body is not a Scalekit event"}, status=400)
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = WebhookEvent.objects.create(
                        event_id=event_id,
                        type=event_type,
                        organization_id=payload.get("organization_id") or "",
                        payload=payload,
                    )
            except IntegrityError:
                return JsonResponse({"detail": "already processed", "id": event_id})
            record.outcome = apply(payload)[:255]
            record.save(update_fields=["outcome"])
    except EventError as exc:
        events.record("webhook", False, f"{event_type} {event_id} refused: {exc}", request=request)
        return JsonResponse({"detail": str(exc), "id": event_id}, status=400)
    except Exception as exc:
        if not isinstance(exc, ScalekitUnreachable):
            logger.exception("scalekit_auth webhook %s %s not applied", event_type, event_id)
        reason = f"{event_type} {event_id} not applied, Scalekit will retry: {_describe(exc)}"
        events.record("webhook", False, reason, request=request)
        status = 503 if isinstance(exc, ScalekitUnreachable) else 500
        detail = f"not applied ({type(exc).__name__}); deliver it again"
        return JsonResponse({"detail": detail, "id": event_id}, status=status)
    events.record("webhook", True, f"{event_type}: {record.outcome}", request=request)
    return JsonResponse({"detail": record.outcome, "id": event_id})


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ScalekitUnreachable) else f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Event:
    """The parts of a Scalekit event the handlers read."""

    id: str
    type: str
    organization_id: str
    occurred_at: datetime
    data: dict[str, Any]


def parse(payload: dict[str, Any]) -> Event:
    """The event in ``payload`` (a decoded body); ``EventError`` names what is unusable."""
    occurred_at = payload.get("occurred_at")
    if not isinstance(occurred_at, str) or not occurred_at:
        raise EventError("occurred_at is missing: Scalekit events carry the time they happened")
    try:
        when = datetime.fromisoformat(occurred_at)
    except ValueError as exc:
        raise EventError(f"occurred_at {occurred_at[:40]!r} is not an RFC 3339 time") from exc
    if when.tzinfo is None:
        raise EventError(f"occurred_at {occurred_at[:40]!r} has no time zone")
    data = payload.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EventError("data is not an object")
    return Event(
        id=str(payload["id"]),
        type=str(payload["type"]),
        organization_id=str(payload.get("organization_id") or ""),
        occurred_at=when,
        data=data,
    )


def apply(payload: dict[str, Any]) -> str:
    """Apply one event to the Django users it concerns; return what was done.

    Runs inside the caller's transaction. Raises ``EventError`` for an unusable event and
    ``ScalekitUnreachable`` when Scalekit had to be asked and could not answer.
    """
    event = parse(payload)
    handler = HANDLERS.get(event.type)
    if handler is None:
        return "ignored"
    return handler(event)


# -- reading payloads -----------------------------------------------------------------------------


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError(f"{where}.{key} is not an object")
    return value


def _membership_organization(event: Event) -> str:
    organization = _object(event.data, "organization", "data")
    organization_id = organization.get("id") or event.organization_id
    if not organization_id:
        raise EventError(
            f"{event.type} names no organization (data.organization.id or organization_id)"
        )
    return str(organization_id)


def _memberships(user_data: dict[str, Any]) -> list[dict[str, Any]]:
    memberships = user_data.get("memberships")
    if memberships is None:
        return []
    if not isinstance(memberships, list) or not all(isinstance(m, dict) for m in memberships):
        raise EventError("data.user.memberships is not a list of objects")
    return memberships


def _membership(user_data: dict[str, Any], organization_id: str) -> dict[str, Any] | None:
    """The membership in ``organization_id``: ``user.membership`` (Scalekit's documented
    examples: the membership the event is about), else the one in ``user.memberships``."""
    single = _object(user_data, "membership", "data.user")
    if single and single.get("organization_id") in (None, "", organization_id):
        return single
    for membership in _memberships(user_data):
        if membership.get("organization_id") == organization_id:
            return membership
    return None


def _role_names(membership: dict[str, Any]) -> list[str] | None:
    """The membership's role names; None when a role is given without its name (by id only,
    as in some of Scalekit's examples)."""
    roles = membership.get("roles") or []
    if not isinstance(roles, list):
        raise EventError("the membership's roles are not a list")
    names = [role.get("name") if isinstance(role, dict) else None for role in roles]
    if not all(isinstance(name, str) and name for name in names):
        return None
    return names


def scalekit_memberships(scalekit_user_id: str) -> list[dict[str, Any]]:
    """The user's memberships as Scalekit has them now (snake_case dicts, like the events');
    empty for a user Scalekit no longer has. ``ScalekitUnreachable`` when Scalekit cannot
    answer: the caller must not guess."""
    try:
        response = get_client().users.get_user(scalekit_user_id)[0]
    except ScalekitNotFoundException:
        return []
    except Exception as exc:
        if isinstance(exc, ScalekitServerException):
            why = f"{exc.grpc_status.name}: {exc.message}"
        else:
            why = str(exc)
        raise ScalekitUnreachable(
            f"could not read the memberships of {scalekit_user_id} from Scalekit "
            f"({type(exc).__name__}, {why})"
        ) from exc
    return [
        MessageToDict(membership, preserving_proto_field_name=True)
        for membership in response.user.memberships
    ]


# -- finding the user ----------------------------------------------------------------------------


def _identity(user_data: dict[str, Any]) -> ScalekitIdentity | None:
    user_id = user_data.get("id")
    if not user_id:
        return None
    return (
        ScalekitIdentity.objects.select_related("user")
        .select_for_update()
        .filter(scalekit_user_id=user_id)
        .first()
    )


def _directory_identity(event: Event) -> tuple[ScalekitIdentity | None, str]:
    """The linked user a directory (SCIM) user is, by email, or None and why not.

    A directory user's ``id`` is a ``diruser_...`` and its ``dp_id`` the identity provider's
    own id: neither is a Scalekit user id or our external id, so only the email can match, and
    only for a user whose last login was through the directory's organization.
    """
    email = event.data.get("email")
    if not isinstance(email, str) or not email.strip():
        raise EventError(f"{event.type} has no data.email to find the user by")
    organization_id = str(event.data.get("organization_id") or event.organization_id)
    if not organization_id:
        raise EventError(f"{event.type} names no organization (organization_id)")
    email_field = get_user_model().get_email_field_name()
    matches = list(
        ScalekitIdentity.objects.select_related("user")
        .select_for_update()
        .filter(**{f"user__{email_field}__iexact": email.strip()})[:2]
    )
    directory_user = event.data.get("id") or "directory user"
    if not matches:
        return None, f"no linked user with the email of {directory_user}"
    if len(matches) > 1:
        return None, f"several linked users have the email of {directory_user}: none changed"
    identity = matches[0]
    if identity.organization_id != organization_id:
        return None, (
            f"user {identity.user.pk} (email of {directory_user}) last logged in through "
            f"{identity.organization_id or 'no organization'}, not {organization_id}: unchanged"
        )
    return identity, ""


# -- what events change ----------------------------------------------------------------------------


def _older(last: datetime | None, event: Event) -> str:
    """Why ``event`` is not applied to a state last set at ``last``, or "" when it is newer."""
    if last is not None and event.occurred_at < last:
        return f"the event is older than the last one applied ({last.isoformat()})"
    return ""


def _set_roles(identity: ScalekitIdentity, event: Event, roles: list[str], why: str) -> str:
    user = identity.user
    if sync_roles(user, roles):
        user.save()
    identity.roles = roles
    identity.roles_event_at = event.occurred_at
    identity.save(update_fields=["roles", "roles_event_at"])
    return f"roles of user {user.pk} set to {roles}{why}"


def _apply_membership_roles(
    identity: ScalekitIdentity, event: Event, user_data: dict[str, Any], organization_id: str
) -> str:
    user = identity.user
    if identity.organization_id and organization_id != identity.organization_id:
        return (
            f"roles of user {user.pk} unchanged: membership of {organization_id}, not of "
            f"{identity.organization_id} (their last login)"
        )
    stale = _older(identity.roles_event_at, event)
    if stale:
        return f"roles of user {user.pk} unchanged: {stale}"
    membership = _membership(user_data, organization_id)
    if membership is None:
        return (
            f"roles of user {user.pk} unchanged: the event has no membership in "
            f"{organization_id} (user.membership or user.memberships)"
        )
    roles = _role_names(membership)
    if roles is not None:
        return _set_roles(identity, event, roles, "")
    current = None
    for candidate in scalekit_memberships(identity.scalekit_user_id):
        if candidate.get("organization_id") == organization_id:
            current = candidate
    roles = _role_names(current) if current is not None else None
    if roles is None:
        return (
            f"roles of user {user.pk} unchanged: the event's roles have no names and Scalekit "
            f"has no named roles for a membership in {organization_id}"
        )
    return _set_roles(identity, event, roles, " (role names read from Scalekit)")


def _status_unchanged(identity: ScalekitIdentity, stale: str) -> str:
    user = identity.user
    return f"user {user.pk} left {'active' if user.is_active else 'inactive'}: {stale}"


def _settle_status(
    identity: ScalekitIdentity, event: Event, remaining: list[str], source: str
) -> str:
    """Make the user active or not from ``remaining``, the organizations they are still a
    member of (per ``source``). Only a webhook's own deactivation is ever undone."""
    user = identity.user
    stale = _older(identity.status_event_at, event)
    if stale:
        return _status_unchanged(identity, stale)
    fields = ["status_event_at"]
    identity.status_event_at = event.occurred_at
    if remaining:
        members_of = f"a member of {', '.join(sorted(set(remaining)))} ({source})"
        if user.is_active:
            outcome = f"user {user.pk} stays active: {members_of}"
        elif identity.deactivated_by_event:
            user.is_active = True
            user.save(update_fields=["is_active"])
            identity.deactivated_by_event = ""
            fields.append("deactivated_by_event")
            outcome = f"user {user.pk} reactivated: {members_of}"
        else:
            outcome = f"user {user.pk} stays inactive (not deactivated by a webhook): {members_of}"
    elif user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        identity.deactivated_by_event = event.id
        fields.append("deactivated_by_event")
        outcome = f"user {user.pk} deactivated: no membership left ({source})"
    else:
        outcome = f"user {user.pk} already inactive: no membership left ({source})"
    identity.save(update_fields=fields)
    return outcome


def _remaining_in_event(user_data: dict[str, Any], organization_id: str) -> list[str] | None:
    """The organizations the event says the user is still a member of, or None when it does not
    say: no ``memberships`` (an empty list is not sent), or a list taken before the deletion
    (it still holds ``organization_id``, and cannot tell a removal from one organization from
    the deletion of the whole user)."""
    organizations = _organizations(_memberships(user_data))
    if not organizations or organization_id in organizations:
        return None
    return organizations


def _organizations(memberships: list[dict[str, Any]]) -> list[str]:
    return [str(m["organization_id"]) for m in memberships if m.get("organization_id")]


def _update_profile(identity: ScalekitIdentity, event: Event, values: dict[str, Any]) -> str:
    user = identity.user
    stale = _older(identity.profile_event_at, event)
    if stale:
        return f"user {user.pk} unchanged: {stale}"
    changed = []
    for field, value in values.items():
        if value and isinstance(value, str) and getattr(user, field, value) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
    identity.profile_event_at = event.occurred_at
    identity.save(update_fields=["profile_event_at"])
    return f"user {user.pk} updated: {', '.join(changed) or 'nothing changed'}"


# -- handlers --------------------------------------------------------------------------------------


def on_membership_changed(event: Event) -> str:
    user_data = _object(event.data, "user", "data")
    organization_id = _membership_organization(event)
    identity = _identity(user_data)
    if identity is None:
        return "no linked user"
    outcomes = []
    if event.type == MEMBERSHIP_CREATED:
        outcomes.append(_settle_status(identity, event, [organization_id], "this event"))
    outcomes.append(_apply_membership_roles(identity, event, user_data, organization_id))
    return "; ".join(outcomes)


def on_membership_deleted(event: Event) -> str:
    user_data = _object(event.data, "user", "data")
    organization_id = _membership_organization(event)
    identity = _identity(user_data)
    if identity is None:
        return "no linked user"
    user, outcomes = identity.user, []
    if not identity.organization_id or identity.organization_id == organization_id:
        stale = _older(identity.roles_event_at, event)
        if stale:
            outcomes.append(f"roles of user {user.pk} unchanged: {stale}")
        else:
            outcomes.append(
                _set_roles(identity, event, [], f" (membership in {organization_id} deleted)")
            )
    stale = _older(identity.status_event_at, event)
    if stale:
        outcomes.append(_status_unchanged(identity, stale))
        return "; ".join(outcomes)
    remaining = _remaining_in_event(user_data, organization_id)
    source = "per the event"
    if remaining is None:
        remaining = _organizations(scalekit_memberships(identity.scalekit_user_id))
        source = "per Scalekit"
    outcomes.append(_settle_status(identity, event, remaining, source))
    return "; ".join(outcomes)


def on_user_deleted(event: Event) -> str:
    identity = _identity(_object(event.data, "user", "data") or event.data)
    if identity is None:
        return "no linked user"
    return _settle_status(identity, event, [], "the Scalekit user was deleted")


def on_user_updated(event: Event) -> str:
    user_data = _object(event.data, "user", "data") or event.data
    identity = _identity(user_data)
    if identity is None:
        return "no linked user"
    profile = _object(user_data, "user_profile", "data.user")
    return _update_profile(
        identity,
        event,
        {
            identity.user.get_email_field_name(): user_data.get("email"),
            "first_name": profile.get("given_name"),
            "last_name": profile.get("family_name"),
        },
    )


def on_directory_user_updated(event: Event) -> str:
    identity, why_not = _directory_identity(event)
    if identity is None:
        return why_not
    outcome = _update_profile(
        identity,
        event,
        {"first_name": event.data.get("given_name"), "last_name": event.data.get("family_name")},
    )
    if event.data.get("active") is False:
        outcome += (
            "; the directory marks them inactive: whether they stay active follows their "
            "Scalekit memberships (membership events)"
        )
    return outcome


def on_directory_user_deleted(event: Event) -> str:
    identity, why_not = _directory_identity(event)
    if identity is None:
        return why_not
    remaining = _organizations(scalekit_memberships(identity.scalekit_user_id))
    return _settle_status(identity, event, remaining, "per Scalekit")


HANDLERS = {
    MEMBERSHIP_CREATED: on_membership_changed,
    MEMBERSHIP_UPDATED: on_membership_changed,
    MEMBERSHIP_DELETED: on_membership_deleted,
    # Not in Scalekit's published event list (wire doc 5.2) but named by its user docs; handled
    # in case they are sent.
    "user.updated": on_user_updated,
    "user.deleted": on_user_deleted,
    "organization.directory.user_updated": on_directory_user_updated,
    "organization.directory.user_deleted": on_directory_user_deleted,
}


def forget_webhook_deactivation(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of the user model: a user saved active (an admin reactivating them...)
    is no longer one a webhook deactivated, so a later membership event never undoes a
    deactivation made afterwards by someone else."""
    update_fields = kwargs.get("update_fields")
    if kwargs.get("raw") or kwargs.get("created") or not getattr(instance, "is_active", False):
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    ScalekitIdentity.objects.filter(user_id=instance.pk).exclude(deactivated_by_event="").update(
        deactivated_by_event=""
    )
