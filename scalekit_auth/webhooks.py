"""The webhook endpoint: Scalekit's events about users and memberships, applied to Django users.

Signatures are checked the Standard Webhooks way, as the SDK's ``verify_webhook_payload`` does
(HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed by the base64 part of the
``whsec_`` secret), computed here so that no client (and no network call) is needed. Events
older or newer than ``WEBHOOK_TOLERANCE_SECONDS`` are refused as replays, and an event id seen
before is acknowledged without being applied again (Scalekit may deliver twice).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import events
from .conf import app_settings
from .models import ScalekitIdentity, WebhookEvent
from .roles import sync_roles

logger = logging.getLogger("scalekit_auth")


class SignatureError(Exception):
    pass


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
        event = json.loads(request.body)
        event_id, event_type = event["id"], event["type"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"detail": "the body is not a Scalekit event"}, status=400)
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                event_id=event_id,
                type=event_type,
                organization_id=event.get("organization_id") or "",
                payload=event,
            )
            record.outcome = apply(event)
            record.save(update_fields=["outcome"])
    except IntegrityError:
        return JsonResponse({"detail": "already processed", "id": event_id})
    events.record("webhook", True, f"{event_type}: {record.outcome}"[:255], request=request)
    return JsonResponse({"detail": record.outcome, "id": event_id})


def apply(event: dict[str, Any]) -> str:
    """Apply one event to the Django users it concerns; return what was done."""
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return "ignored"
    return handler(event.get("data") or {}, event)


def _identity(user_data: dict[str, Any]) -> ScalekitIdentity | None:
    user_id = user_data.get("id")
    if not user_id:
        return None
    return ScalekitIdentity.objects.select_related("user").filter(scalekit_user_id=user_id).first()


def _membership(user_data: dict[str, Any], organization_id: str) -> dict[str, Any] | None:
    for membership in user_data.get("memberships") or []:
        if membership.get("organization_id") == organization_id:
            return membership
    return None


def on_membership_changed(data: dict[str, Any], event: dict[str, Any]) -> str:
    user_data = data.get("user") or {}
    identity = _identity(user_data)
    if identity is None:
        return "no linked user"
    organization_id = (data.get("organization") or {}).get("id") or event.get("organization_id", "")
    if identity.organization_id and organization_id != identity.organization_id:
        return "membership of another organization"
    membership = _membership(user_data, organization_id)
    roles = [role.get("name") for role in (membership or {}).get("roles", []) if role.get("name")]
    user = identity.user
    if sync_roles(user, roles):
        user.save()
    identity.roles = roles
    identity.save(update_fields=["roles"])
    return f"roles of user {user.pk} set to {roles}"


def on_membership_deleted(data: dict[str, Any], event: dict[str, Any]) -> str:
    user_data = data.get("user") or {}
    identity = _identity(user_data)
    if identity is None:
        return "no linked user"
    organization_id = (data.get("organization") or {}).get("id") or event.get("organization_id", "")
    if identity.organization_id and organization_id != identity.organization_id:
        return "membership of another organization"
    return _deactivate(identity, "membership deleted")


def on_user_deleted(data: dict[str, Any], event: dict[str, Any]) -> str:
    identity = _identity(data.get("user") or data)
    return _deactivate(identity, "user deleted") if identity else "no linked user"


def on_user_updated(data: dict[str, Any], event: dict[str, Any]) -> str:
    user_data = data.get("user") or data
    identity = _identity(user_data)
    if identity is None:
        return "no linked user"
    user, profile = identity.user, user_data.get("user_profile") or {}
    changed = []
    for field, value in (
        (user.get_email_field_name(), user_data.get("email")),
        ("first_name", profile.get("given_name")),
        ("last_name", profile.get("family_name")),
    ):
        if value and getattr(user, field, value) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
    return f"user {user.pk} updated: {', '.join(changed) or 'nothing changed'}"


def _deactivate(identity: ScalekitIdentity, why: str) -> str:
    user = identity.user
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    return f"user {user.pk} deactivated ({why})"


HANDLERS = {
    "user.organization_membership_created": on_membership_changed,
    "user.organization_membership_updated": on_membership_changed,
    "user.organization_membership_deleted": on_membership_deleted,
    # Not in Scalekit's published event list (wire doc 5.2) but named by its user docs; handled
    # in case they are sent. SCIM directory events carry the same user shape.
    "user.updated": on_user_updated,
    "user.deleted": on_user_deleted,
    "organization.directory.user_updated": on_user_updated,
    "organization.directory.user_deleted": on_user_deleted,
}
