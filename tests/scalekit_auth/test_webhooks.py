"""The webhook endpoint: signatures, replays, idempotency, failures, and events delivered by the
emulator. What each event does to a user: ``test_webhooks_handlers.py``."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from scalekit import ScalekitClient
from scalekit.v1.commons import commons_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth import webhooks
from scalekit_auth.client import reset_client
from scalekit_auth.emulator.testing import emulator_settings
from scalekit_auth.emulator.webhooks import new_secret, sign
from scalekit_auth.models import AuthEvent, WebhookEvent
from scalekit_auth.webhooks import SignatureError, verify_signature

from .conftest import add_user, login

SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA=="


@pytest.fixture(autouse=True)
def fresh_client():
    """The webhook asks Scalekit through the process-wide client: build it for this test's
    emulator settings."""
    reset_client()
    yield
    reset_client()


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


def occurred(seconds: float = 0.0) -> str:
    """An ``occurred_at`` ``seconds`` from now, in Scalekit's format (nanoseconds, Z)."""
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def event(
    event_id: str,
    event_type: str,
    data: dict,
    organization_id: str = "",
    *,
    at: str | None = None,
    object_type: str = "OrgMembershipEvent",
) -> dict:
    return {
        "spec_version": "1",
        "id": event_id,
        "type": event_type,
        "object": object_type,
        "occurred_at": at or occurred(),
        "environment_id": "env_000000000000000001",
        "organization_id": organization_id,
        "data": data,
    }


def membership_data(org_id: str, user_id: str, *memberships: tuple[str, list[str]]) -> dict:
    """``{organization, user}`` with ``user.memberships`` as (organization id, role names)."""
    return {
        "organization": {"id": org_id},
        "user": {
            "id": user_id,
            "memberships": [
                {"organization_id": org, "roles": [{"name": name} for name in roles]}
                for org, roles in memberships
            ],
        },
    }


def groups(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


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
    org, sk_user = add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    user = get_user_model().objects.get()
    sdk.users.delete_membership(org.id, sk_user.id)
    data = {"organization": {"id": org.id}, "user": {"id": sk_user.id}}
    payload = event("evt_10", "user.organization_membership_deleted", data, org.id)

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


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("occurred_at", "message"),
    [
        (None, "occurred_at is missing"),
        ("yesterday", "occurred_at 'yesterday' is not an RFC 3339 time"),
        ("2025-01-15T08:55:22", "has no time zone"),
    ],
)
def test_an_event_without_a_usable_time_is_refused(client, auth_emulator, occurred_at, message):
    payload = event("evt_t", "user.organization_membership_updated", {})
    if occurred_at is None:
        del payload["occurred_at"]
    else:
        payload["occurred_at"] = occurred_at

    response = post_event(client, payload)

    assert response.status_code == 400 and message in response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    refused = AuthEvent.objects.get(kind="webhook", success=False)
    assert "evt_t refused" in refused.reason and message in refused.reason


@pytest.mark.django_db
def test_a_membership_event_without_an_organization_is_refused(client, sdk, auth_emulator):
    _org, sk_user = add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    payload = event("evt_o", "user.organization_membership_updated", {"user": {"id": sk_user.id}})

    response = post_event(client, payload)

    assert response.status_code == 400
    assert "names no organization" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_failure_while_applying_is_answered_5xx_and_the_redelivery_applies(
    client, sdk, auth_emulator, settings, monkeypatch
):
    """An IntegrityError raised by the database while applying (e.g. two processes creating the
    same group) is not a redelivery: nothing is kept, Scalekit gets a 500 and delivers again.
    (Faked: such a race cannot be produced on demand.)"""
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "ROLE_GROUPS": {"admin": ["Admins"]}}
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["member"])
    login(client, auth_emulator, "ada@acme.example")
    user = get_user_model().objects.get()
    payload = event(
        "evt_f",
        "user.organization_membership_updated",
        membership_data(org.id, sk_user.id, (org.id, ["admin"])),
        org.id,
    )

    def group_race(user, roles):
        raise IntegrityError("UNIQUE constraint failed: auth_group.name")

    monkeypatch.setattr(webhooks, "sync_roles", group_race)
    failed = post_event(client, payload)

    assert failed.status_code == 500
    assert failed.json() == {
        "detail": "not applied (IntegrityError); deliver it again",
        "id": "evt_f",
    }
    assert not WebhookEvent.objects.exists()
    reason = AuthEvent.objects.get(kind="webhook", success=False).reason
    assert reason.startswith("user.organization_membership_updated evt_f not applied")
    assert "IntegrityError: UNIQUE constraint failed: auth_group.name" in reason

    monkeypatch.undo()
    again = post_event(client, payload)

    assert again.status_code == 200 and "set to ['admin']" in again.json()["detail"]
    assert groups(user) == ["Admins"]
    assert WebhookEvent.objects.get().event_id == "evt_f"


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
    wait_for(lambda: applied("user.organization_membership_updated", sk_user.id))
    assert list(user.groups.values_list("name", flat=True)) == ["Admins"]

    sdk.users.delete_membership(org.id, sk_user.id)
    wait_for(lambda: applied("user.organization_membership_deleted", sk_user.id))
    user.refresh_from_db()
    outcomes = list(WebhookEvent.objects.values_list("type", "outcome"))
    assert user.is_active is False, outcomes
    assert groups(user) == [], outcomes
    wait_for(lambda: all_delivered(fresh_emulator, 2))


@pytest.mark.django_db(transaction=True)
def test_delivered_events_of_a_member_of_two_organizations(
    live_server, sdk, fresh_emulator, settings
):
    """End to end, a user in acme (where they log in) and beta: leaving acme clears their
    roles but keeps them active; leaving beta too deactivates them; joining beta again brings
    them back, and joining acme again gives them acme's roles."""
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
        "STAFF_ROLES": ["admin"],
    }
    acme, sk_user = add_user(sdk, "ada@acme.example", roles=["admin"])
    beta = add_user(sdk, "bob@beta.example", org_external_id="beta")[0]
    sdk.users.create_membership(
        beta.id,
        sk_user.id,
        users_pb2.CreateMembership(roles=[commons_pb2.Role(name="member")]),
        send_invitation_email=False,
    )
    login(Client(), fresh_emulator, "ada@acme.example", organization_id=acme.id)
    user = get_user_model().objects.get(email="ada@acme.example")
    assert groups(user) == ["Admins"] and user.is_staff
    fresh_emulator.control.configure_webhooks(f"{base}/auth/webhooks/", secret)

    sdk.users.delete_membership(acme.id, sk_user.id)
    wait_for(lambda: applied("user.organization_membership_deleted", sk_user.id))
    user.refresh_from_db()
    assert user.is_active and groups(user) == [] and not user.is_staff, outcomes()
    assert "stays active: a member of " + beta.id in outcomes()[-1][1]

    delete_membership_keeping_user(sdk, beta.id, sk_user.id)
    wait_for(lambda: applied("user.organization_membership_deleted", sk_user.id, count=2))
    user.refresh_from_db()
    assert user.is_active is False, outcomes()
    deactivation = WebhookEvent.objects.filter(type="user.organization_membership_deleted")
    assert user.scalekit_identity.deactivated_by_event == deactivation.first().event_id

    sdk.users.create_membership(
        beta.id,
        sk_user.id,
        users_pb2.CreateMembership(roles=[commons_pb2.Role(name="member")]),
        send_invitation_email=False,
    )
    wait_for(lambda: applied("user.organization_membership_created", sk_user.id))
    user.refresh_from_db()
    assert user.is_active and groups(user) == [], outcomes()
    assert user.scalekit_identity.deactivated_by_event == ""

    sdk.users.create_membership(
        acme.id,
        sk_user.id,
        users_pb2.CreateMembership(roles=[commons_pb2.Role(name="admin")]),
        send_invitation_email=False,
    )
    wait_for(lambda: applied("user.organization_membership_created", sk_user.id, count=2))
    user.refresh_from_db()
    assert groups(user) == ["Admins"] and user.is_staff, outcomes()
    wait_for(lambda: all_delivered(fresh_emulator, 4))


def delete_membership_keeping_user(sdk, organization_id: str, user_id: str) -> None:
    """DeleteMembership with ``cascade=False`` (the SDK's method does not offer it), so the
    user stays in Scalekit with no membership."""
    sdk.users.core_client.grpc_exec(
        sdk.users.user_service.DeleteMembership.with_call,
        users_pb2.DeleteMembershipRequest(
            organization_id=organization_id, id=user_id, cascade=False
        ),
    )


def outcomes() -> list[tuple[str, str]]:
    return list(WebhookEvent.objects.order_by("received_at", "pk").values_list("type", "outcome"))


def applied(event_type: str, scalekit_user_id: str, count: int = 1) -> bool:
    """``count`` events of this type for this user have been applied. (With in-memory SQLite
    the live server shares the test's connection, so a row is visible before its transaction
    ends: wait for the outcome, written last.)"""
    return (
        sum(
            (e.payload.get("data") or {}).get("user", {}).get("id") == scalekit_user_id
            for e in WebhookEvent.objects.filter(type=event_type).exclude(outcome="")
        )
        >= count
    )


def all_delivered(emulator, count: int) -> bool:
    """The emulator has ``count`` deliveries, all answered 2xx. (An outcome is visible before
    the site's answer reaches the emulator.)"""
    deliveries = emulator.control.deliveries()
    return len(deliveries) >= count and all(d["delivered"] for d in deliveries)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
