"""The webhook endpoint: signatures, replays, idempotency, and what events do to users."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from scalekit import ScalekitClient
from scalekit.v1.commons import commons_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.emulator.testing import emulator_settings
from scalekit_auth.emulator.webhooks import new_secret, sign
from scalekit_auth.models import AuthEvent, WebhookEvent
from scalekit_auth.webhooks import SignatureError, verify_signature

from .conftest import add_user, login

SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA=="


def post_event(
    client,
    event: dict,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
):
    body = json.dumps(event)
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": event["id"],
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature or sign(secret, event["id"], timestamp, body),
    }
    return client.post("/auth/webhooks/", body, content_type="application/json", headers=headers)


def event(event_id: str, event_type: str, data: dict, organization_id: str = "") -> dict:
    return {
        "spec_version": "1",
        "id": event_id,
        "type": event_type,
        "object": "OrgMembership",
        "organization_id": organization_id,
        "data": data,
    }


@pytest.mark.django_db
def test_our_verification_agrees_with_the_sdks(auth_emulator):
    sdk = ScalekitClient(auth_emulator.url, auth_emulator.client_id, auth_emulator.client_secret)
    secret, body, now = new_secret(), '{"id":"evt_1"}', int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "evt_1", now, body),
    }
    assert sdk.verify_webhook_payload(secret, headers, body) is True
    verify_signature(secret, headers, body.encode())
    with pytest.raises(SignatureError, match="no valid v1 signature"):
        verify_signature(secret, headers, b'{"id":"evt_2"}')


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing"),
        ({"timestamp": -400}, "outside the tolerance"),
        ({"signature": "v1,AAAA"}, "no valid v1 signature"),
        ({"signature": "v2,whatever"}, "no valid v1 signature"),
    ],
)
def test_unsigned_forged_and_old_events_are_refused(client, auth_emulator, headers, message):
    payload = event("evt_bad", "user.organization_membership_deleted", {})
    if headers == {}:
        response = client.post(
            "/auth/webhooks/", json.dumps(payload), content_type="application/json"
        )
    else:
        timestamp = int(time.time()) + headers.get("timestamp", 0)
        response = post_event(
            client, payload, timestamp=timestamp, signature=headers.get("signature")
        )
    assert response.status_code == 401 and message in response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    assert AuthEvent.objects.filter(kind="webhook", success=False).count() == 1


@pytest.mark.django_db
def test_redelivered_event_is_acknowledged_once_applied_once(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    user = get_user_model().objects.get()
    identity = user.scalekit_identity
    data = {
        "organization": {"id": identity.organization_id},
        "user": {"id": identity.scalekit_user_id},
    }
    payload = event(
        "evt_10", "user.organization_membership_deleted", data, identity.organization_id
    )

    first = post_event(client, payload)
    second = post_event(client, payload)

    assert first.status_code == 200 and "deactivated" in first.json()["detail"]
    assert second.status_code == 200 and second.json()["detail"] == "already processed"
    assert WebhookEvent.objects.count() == 1
    user.refresh_from_db()
    assert user.is_active is False


@pytest.mark.django_db
def test_webhooks_are_off_without_a_secret(client, auth_emulator, settings):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "WEBHOOK_SECRET": ""}
    response = post_event(client, event("evt_1", "user.updated", {}))
    assert response.status_code == 503


@pytest.mark.django_db(transaction=True)
def test_events_delivered_by_scalekit_update_and_deactivate_users(
    live_server, sdk, fresh_emulator, settings
):
    """End to end: the emulator signs and POSTs real events to the running site."""
    from django.test import Client

    from .conftest import AFTER_LOGOUT

    base = live_server.url
    fresh_emulator.control.register_uris(
        [f"{base}/auth/callback/", "http://testserver/auth/callback/"], [AFTER_LOGOUT]
    )
    secret = new_secret()
    settings.SCALEKIT_AUTH = {
        **settings.SCALEKIT_AUTH,
        **emulator_settings(fresh_emulator),
        "WEBHOOK_SECRET": secret,
        "ROLE_GROUPS": {"admin": ["Admins"], "member": ["Members"]},
    }
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["member"])
    browser = Client()
    login(browser, fresh_emulator, "ada@acme.example")
    user = get_user_model().objects.get()
    assert list(user.groups.values_list("name", flat=True)) == ["Members"]
    fresh_emulator.control.configure_webhooks(f"{base}/auth/webhooks/", secret)

    sdk.users.update_membership(
        org.id, sk_user.id, users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="admin")])
    )
    wait_for(
        lambda: WebhookEvent.objects.filter(type="user.organization_membership_updated").exists()
    )
    assert list(user.groups.values_list("name", flat=True)) == ["Admins"]

    sdk.users.delete_membership(org.id, sk_user.id)
    wait_for(
        lambda: WebhookEvent.objects.filter(type="user.organization_membership_deleted").exists()
    )
    user.refresh_from_db()
    outcomes = list(WebhookEvent.objects.values_list("type", "outcome"))
    assert user.is_active is False, outcomes
    delivered = fresh_emulator.control.deliveries()
    assert all(d["delivered"] for d in delivered) and len(delivered) >= 2


def event_for(scalekit_user_id: str, event_type: str) -> bool:
    """The event for this user has been applied. (With in-memory SQLite the live server shares
    the test's connection, so a row is visible before its transaction ends: wait for the
    outcome, written last.)"""
    return any(
        (e.payload.get("data") or {}).get("user", {}).get("id") == scalekit_user_id
        for e in WebhookEvent.objects.filter(type=event_type).exclude(outcome="")
    )


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
