"""The refresh lock of ``scalekit_auth.session``: one token request per refresh token, whatever
the interleaving of the requests of one session, and a lock only its holder releases."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from scalekit.core import DEFAULT_HTTP_TIMEOUT

from scalekit_auth import session as token_session
from scalekit_auth.client import get_client
from scalekit_auth.session import SESSION_KEY
from scalekit_auth.signals import token_requested

from .conftest import add_user, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def expired(client, sdk, auth_emulator) -> dict:
    """The session data of a fresh login whose access token has just expired."""
    add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    data = client.session[SESSION_KEY]
    data["expires_at"] = int(time.time()) - 1
    auth_emulator.control.reset_counters()
    return data


@pytest.fixture
def shared_cache(redis_server, settings):
    """``CACHE_ALIAS`` on Redis, as in production; yields a raw client on the same database."""
    location = redis_server.rsplit("/", 1)[0] + "/4"
    settings.CACHES = {
        **settings.CACHES,
        "shared": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location},
    }
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CACHE_ALIAS": "shared"}
    caches["shared"].clear()
    raw = redis.Redis.from_url(location)
    yield raw
    caches["shared"].clear()
    raw.close()


@pytest.fixture
def during_token_request():
    """Register ``hook`` to run in the refreshing request, just before it posts to Scalekit."""
    hooks = []

    def register(hook):
        def receiver(sender, grant_type, **kwargs):
            if grant_type == "refresh_token":
                hook()

        hooks.append(receiver)
        token_requested.connect(receiver, weak=False)

    yield register
    for receiver in hooks:
        token_requested.disconnect(receiver)


def token_calls(emulator) -> int:
    return emulator.control.counters()["calls"].get("/oauth/token", 0)


def rebuild_client(emulator) -> None:
    """Build the SDK client again after a settings change (its own token request), so that
    ``token_calls`` counts only refreshes."""
    get_client()
    emulator.control.reset_counters()


def test_a_refresh_started_as_another_finished_takes_its_result(
    expired, auth_emulator, monkeypatch
):
    """Request B finds no result; A refreshes from start to end (result stored, lock released);
    only then does B take the lock. B must use A's result, not send the used token again."""
    real = caches["default"]
    lock_key, _ = token_session._keys(expired["refresh_token"])
    a_ran, first_of_a = [], []

    class AFinishesBeforeBTakesTheLock:
        """The real cache; the first ``add`` of the lock first runs request A to its end."""

        def __getattr__(self, name):
            return getattr(real, name)

        def add(self, key, *args, **kwargs):
            if key == lock_key and not a_ran:
                a_ran.append(True)
                first_of_a.append(token_session.refresh(expired))
            return real.add(key, *args, **kwargs)

    monkeypatch.setattr(token_session, "caches", {"default": AFinishesBeforeBTakesTheLock()})

    second = token_session.refresh(expired)

    assert second["access_token"] == first_of_a[0]["access_token"]
    assert token_calls(auth_emulator) == 1
    assert real.get(lock_key) is None


def test_the_lock_outlives_the_slowest_token_request_and_others_wait_for_it(
    expired, auth_emulator, shared_cache, during_token_request
):
    """Scalekit answers slowly; while the first request waits for it, the lock's remaining
    life (read in Redis) exceeds the SDK's own connect + read timeouts, and a second request
    waits for the first one's result instead of refreshing."""
    lock_key, _ = token_session._keys(expired["refresh_token"])
    redis_key = caches["shared"].make_key(lock_key)
    ttls = []
    during_token_request(lambda: ttls.append(shared_cache.ttl(redis_key)))
    rebuild_client(auth_emulator)
    auth_emulator.control.set_faults(latency_ms=1500, methods=["/oauth/token"])
    results = {}

    def request(name):
        results[name] = token_session.refresh(expired)

    first = threading.Thread(target=request, args=("first",))
    first.start()
    time.sleep(0.5)
    second = threading.Thread(target=request, args=("second",))
    second.start()
    first.join(10)
    second.join(10)

    assert len(ttls) == 1 and ttls[0] > sum(DEFAULT_HTTP_TIMEOUT)
    assert results["second"]["access_token"] == results["first"]["access_token"]
    assert token_calls(auth_emulator) == 1
    assert shared_cache.exists(redis_key) == 0  # released by its holder


def test_a_lock_taken_over_is_not_released_by_its_former_holder(
    expired, auth_emulator, during_token_request
):
    """Should the lock ever expire under a slow refresh and another request take it, the
    former holder's release must leave the new holder's lock alone."""
    cache = caches["default"]
    lock_key, _ = token_session._keys(expired["refresh_token"])

    def lock_expires_and_another_request_takes_it():
        cache.delete(lock_key)
        assert cache.add(lock_key, "another-request", 60)

    during_token_request(lock_expires_and_another_request_takes_it)

    assert token_session.refresh(expired)["access_token"] != expired["access_token"]
    assert cache.get(lock_key) == "another-request"


def test_a_waiting_request_stops_as_soon_as_the_holder_failed(
    expired, auth_emulator, during_token_request
):
    """The holder's refresh is refused (Scalekit ended the session), slowly; the waiting request
    learns it when the lock is released, not after the lock's full lifetime."""
    auth_emulator.control.end_session(expired["claims"]["sid"])
    auth_emulator.control.set_faults(latency_ms=500, methods=["/oauth/token"])
    holder_failed = []

    def holder():
        with pytest.raises(token_session.RefreshFailed) as excinfo:
            token_session.refresh(expired)
        holder_failed.append(excinfo.value.reason)

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(token_session.RefreshFailed) as excinfo:
        token_session.refresh(expired)
    waited = time.monotonic() - started
    thread.join(10)

    assert holder_failed == ["refresh token refused by Scalekit"]
    assert excinfo.value.reason == "another request's refresh of this session failed"
    assert waited < 3
    assert token_calls(auth_emulator) == 1


@pytest.mark.parametrize("value", [10, 50, 60.5, "120", True])
def test_a_lock_timeout_not_above_the_longest_refresh_is_refused(
    expired, auth_emulator, settings, value
):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "REFRESH_LOCK_TIMEOUT": value}
    rebuild_client(auth_emulator)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        token_session.refresh(expired)
    message = str(excinfo.value)
    assert f"SCALEKIT_AUTH['REFRESH_LOCK_TIMEOUT'] is {value!r}" in message
    assert "above 50" in message
    assert token_calls(auth_emulator) == 0


def test_a_lock_timeout_above_the_longest_refresh_is_used(expired, auth_emulator, settings):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "REFRESH_LOCK_TIMEOUT": 51}
    rebuild_client(auth_emulator)
    assert token_session.refresh(expired)["access_token"] != expired["access_token"]
    assert token_calls(auth_emulator) == 1
