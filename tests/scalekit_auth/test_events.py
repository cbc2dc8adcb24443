"""The auth event log: refused events throttled per (kind, reason, client IP) through the
cache, successes always written, and retention by ``purge()`` and its management command."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from scalekit_auth import events
from scalekit_auth.emulator.webhooks import sign
from scalekit_auth.models import AuthEvent

from .factories import AuthEventFactory, UserFactory

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA=="


def configure(settings, **values):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **values}


def from_ip(ip: str):
    return RequestFactory().get("/api/me/", REMOTE_ADDR=ip)


def rows(**filters) -> list[tuple]:
    return list(
        AuthEvent.objects.filter(**filters)
        .order_by("pk")
        .values_list("kind", "success", "reason", "ip_address")
    )


@pytest.fixture(autouse=True)
def fresh_windows(settings):
    """A private cache for the throttle, so no other test's refusals close a window here."""
    settings.CACHES = {
        **settings.CACHES,
        "events": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ev"},
    }
    configure(settings, CACHE_ALIAS="events")
    caches["events"].clear()


# -- throttling -------------------------------------------------------------------------------


def test_repeated_refusals_write_one_row_per_kind_reason_and_ip():
    for _ in range(5):
        events.record("bearer", False, "token refused: expired", request=from_ip("203.0.113.7"))
    assert (
        events.record("bearer", False, "token refused: expired", request=from_ip("203.0.113.7"))
        is None
    )
    assert rows() == [("bearer", False, "token refused: expired", "203.0.113.7")]

    # Each other kind, reason or client IP has its own window.
    events.record("bearer", False, "token refused: expired", request=from_ip("203.0.113.8"))
    events.record("bearer", False, "token refused: malformed", request=from_ip("203.0.113.7"))
    events.record("webhook", False, "token refused: expired", request=from_ip("203.0.113.7"))
    events.record("bearer", False, "token refused: expired")  # no request: no IP
    assert len(rows()) == 5
    assert len(rows(kind="bearer", reason="token refused: expired")) == 3


def test_successes_are_always_written():
    user = UserFactory()
    for _ in range(3):
        event = events.record(
            "login", True, "hosted login", request=from_ip("203.0.113.7"), user=user
        )
        assert event is not None and event.user == user
    assert len(rows(success=True)) == 3
    # A success does not close the window of the same refusal, nor the reverse.
    events.record("login", False, "hosted login", request=from_ip("203.0.113.7"))
    events.record("login", True, "hosted login", request=from_ip("203.0.113.7"))
    assert len(rows(success=False)) == 1 and len(rows(success=True)) == 4


def test_a_new_window_opens_after_event_throttle_seconds(settings):
    configure(settings, EVENT_THROTTLE_SECONDS=1)
    assert events.record("bearer", False, "token refused: expired") is not None
    assert events.record("bearer", False, "token refused: expired") is None
    time.sleep(1.1)
    assert events.record("bearer", False, "token refused: expired") is not None
    assert len(rows()) == 2


def test_zero_seconds_writes_every_refusal(settings):
    configure(settings, EVENT_THROTTLE_SECONDS=0)
    for _ in range(3):
        events.record("bearer", False, "token refused: expired", request=from_ip("203.0.113.7"))
    assert len(rows()) == 3
    key = events.throttle_key("bearer", "token refused: expired", "203.0.113.7")
    assert caches["events"].get(key) is None  # the cache is not even touched


def test_the_window_lives_in_the_configured_cache_shared_by_processes(settings, redis_server):
    """With Redis as CACHE_ALIAS, the window is a Redis key any other process sees."""
    settings.CACHES = {
        **settings.CACHES,
        "events": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server,
        },
    }
    caches["events"].clear()
    events.record(
        "webhook", False, "rejected: no valid v1 signature", request=from_ip("198.51.100.1")
    )

    key = events.throttle_key("webhook", "rejected: no valid v1 signature", "198.51.100.1")
    other_process = RedisCache(redis_server, {})  # its own connection pool, as another worker
    assert other_process.get(key) == 1
    assert (
        0 < other_process._cache.get_client(key).ttl(other_process.make_and_validate_key(key)) <= 60
    )
    assert "no valid" not in key and "198.51" not in key  # hashed: no reason text in the key
    assert (
        events.record(
            "webhook", False, "rejected: no valid v1 signature", request=from_ip("198.51.100.1")
        )
        is None
    )
    caches["events"].clear()


def test_a_cache_outage_writes_the_row_rather_than_failing_the_request(settings, caplog):
    settings.CACHES = {
        **settings.CACHES,
        "events": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    for _ in range(2):
        assert events.record("bearer", False, "token refused: expired") is not None
    assert len(rows()) == 2
    assert "event throttle unavailable" in caplog.text


@pytest.mark.urls("tests.scalekit_auth.urls")
def test_a_flood_of_bad_bearer_tokens_writes_one_row(auth_emulator):
    client = Client(REMOTE_ADDR="203.0.113.50")
    for n in range(20):
        response = client.get("/api/me/", headers={"authorization": f"Bearer not-a-jwt-{n}"})
        assert response.status_code == 401  # every request is still refused
    assert rows(kind="bearer") == [("bearer", False, "token refused: malformed", "203.0.113.50")]


def test_a_flood_of_forged_webhooks_writes_one_row(auth_emulator):
    client = Client(REMOTE_ADDR="203.0.113.60")
    body = json.dumps(
        {
            "id": "evt_forged",
            "type": "user.deleted",
            "occurred_at": "2025-01-15T08:55:22.802860294Z",
            "data": {},
        }
    )
    forged = sign("whsec_" + "Zm9yZ2VkLXNlY3JldA==", "evt_forged", int(time.time()), body)
    for _ in range(10):
        response = client.post(
            "/auth/webhooks/",
            body,
            content_type="application/json",
            headers={
                "webhook-id": "evt_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": forged,
            },
        )
        assert response.status_code == 401
    assert rows(kind="webhook") == [
        ("webhook", False, "rejected: no valid v1 signature", "203.0.113.60")
    ]
    # A genuine delivery right after is applied and logged.
    now = int(time.time())
    genuine = client.post(
        "/auth/webhooks/",
        body,
        content_type="application/json",
        headers={
            "webhook-id": "evt_forged",
            "webhook-timestamp": str(now),
            "webhook-signature": sign(WEBHOOK_SECRET, "evt_forged", now, body),
        },
    )
    assert genuine.status_code == 200
    assert len(rows(kind="webhook", success=True)) == 1


def test_overriding_settings_starts_new_windows(settings):
    """Tests override SCALEKIT_AUTH; one test's refusals must not silence the next one's."""
    events.record("bearer", False, "token refused: expired")
    configure(settings, EVENT_THROTTLE_SECONDS=60)
    assert events.record("bearer", False, "token refused: expired") is not None


# -- retention --------------------------------------------------------------------------------


def aged(days: float, **fields) -> AuthEvent:
    return AuthEventFactory(created_at=timezone.now() - timedelta(days=days), **fields)


def test_purge_deletes_only_events_past_retention():
    old = [
        aged(91, kind="login"),
        aged(200, kind="bearer", success=False),
        aged(400, kind="bearer"),
    ]
    kept = [aged(89), aged(0)]
    result = events.purge()  # EVENT_RETENTION_DAYS, 90 by default
    assert (result.older_than_days, result.deleted, result.dry_run) == (90, 3, False)
    assert result.by_kind == {"bearer": 2, "login": 1}
    assert set(AuthEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    assert not AuthEvent.objects.filter(pk__in=[e.pk for e in old]).exists()


def test_purge_honours_the_setting_and_the_argument(settings):
    aged(10), aged(40), aged(100)
    configure(settings, EVENT_RETENTION_DAYS=30)
    assert events.purge(dry_run=True).deleted == 2
    assert events.purge(50).deleted == 1
    assert events.purge().deleted == 1
    assert AuthEvent.objects.count() == 1


def test_dry_run_deletes_nothing():
    aged(100), aged(120)
    result = events.purge(dry_run=True)
    assert (result.deleted, result.dry_run) == (2, True)
    assert AuthEvent.objects.count() == 2


def test_purge_works_in_batches(monkeypatch):
    monkeypatch.setattr(events, "PURGE_BATCH_SIZE", 3)
    AuthEventFactory.create_batch(8)
    AuthEvent.objects.update(created_at=timezone.now() - timedelta(days=365))
    aged(1)
    assert events.purge().deleted == 8
    assert AuthEvent.objects.count() == 1


@pytest.mark.parametrize("days", [0, -5, 2.5, True])
def test_purge_refuses_a_bad_retention(days):
    aged(400)
    with pytest.raises(ValueError, match="older_than_days must be an integer of at least 1"):
        events.purge(days)
    assert AuthEvent.objects.count() == 1


def test_command_deletes_and_reports(capsys):
    aged(100, kind="bearer", success=False), aged(5)
    call_command("scalekit_auth_purge_events", "--older-than", "30")
    out = capsys.readouterr().out
    assert out.startswith("Deleted 1 auth event(s) created before ")
    assert "(older than 30 days): 1 bearer. Deleted 0 webhook event(s)" in out
    assert AuthEvent.objects.count() == 1


def test_command_dry_run_as_json(capsys):
    aged(100, kind="bearer"), aged(100, kind="login"), aged(5)
    call_command("scalekit_auth_purge_events", "--dry-run", "--json")
    payload = json.loads(capsys.readouterr().out)
    assert payload["older_than_days"] == 90 and payload["dry_run"] is True
    assert payload["deleted"] == 2 and payload["by_kind"] == {"bearer": 1, "login": 1}
    assert timezone.now() - timedelta(days=90, minutes=1) < datetime.fromisoformat(
        payload["cutoff"]
    )
    assert AuthEvent.objects.count() == 3


def test_command_exits_2_on_bad_arguments_and_settings(settings):
    aged(400)
    with pytest.raises(CommandError, match="--older-than: older_than_days must be") as error:
        call_command("scalekit_auth_purge_events", "--older-than", "0")
    assert error.value.returncode == 2
    configure(settings, EVENT_RETENTION_DAYS="90")
    with pytest.raises(CommandError, match=r"EVENT_RETENTION_DAYS'\]: .* not '90'") as error:
        call_command("scalekit_auth_purge_events")
    assert error.value.returncode == 2
    with pytest.raises(CommandError, match="invalid int value"):
        call_command("scalekit_auth_purge_events", "--older-than", "ninety")
    assert AuthEvent.objects.count() == 1


def test_purge_deletes_webhook_events_of_the_same_age():
    from scalekit_auth.models import WebhookEvent

    from .factories import WebhookEventFactory

    old, recent = WebhookEventFactory(), WebhookEventFactory()
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=91))
    assert events.purge(dry_run=True).webhook_events == 1
    assert WebhookEvent.objects.count() == 2

    result = events.purge()

    assert result.webhook_events == 1 and result.as_dict()["webhook_events"] == 1
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [recent.pk]
