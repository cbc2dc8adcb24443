"""The session middleware: no network while the token is valid, refresh once, log out on failure."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client

from scalekit_auth import session as token_session
from scalekit_auth.client import get_client
from scalekit_auth.models import AuthEvent, RolloutSettings, ScalekitSession
from scalekit_auth.session import SESSION_KEY

from .conftest import add_user, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example", roles=["admin"])
    login(client, auth_emulator, "ada@acme.example")
    auth_emulator.control.reset_counters()
    return client


def expire_soon(client, seconds: float = 5) -> dict:
    session = client.session
    data = session[SESSION_KEY]
    data["expires_at"] = int(time.time() + seconds)
    session[SESSION_KEY] = data
    session.save()
    return data


def test_valid_token_means_no_call_to_scalekit(logged_in, auth_emulator):
    for _ in range(5):
        response = logged_in.get("/whoami/")
        assert response.status_code == 200
    assert response.json()["roles"] == ["admin"]
    assert auth_emulator.control.counters()["calls"] == {}


def test_token_about_to_expire_is_refreshed_and_rotated(logged_in, auth_emulator):
    before = expire_soon(logged_in)
    response = logged_in.get("/whoami/")
    assert response.status_code == 200
    after = logged_in.session[SESSION_KEY]
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > before["expires_at"]
    assert auth_emulator.control.counters()["calls"]["/oauth/token"] == 1
    assert AuthEvent.objects.filter(kind="refresh", success=True).count() == 1
    # The new token is used from now on, without further calls.
    logged_in.get("/whoami/")
    assert auth_emulator.control.counters()["calls"]["/oauth/token"] == 1


def test_failed_refresh_logs_out_html_to_login_with_next(logged_in, auth_emulator):
    data = expire_soon(logged_in, seconds=-1)
    auth_emulator.control.end_session(data["claims"]["sid"])  # Scalekit revoked the session
    response = logged_in.get("/profile/?tab=1")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Fprofile%2F%3Ftab%3D1"
    assert SESSION_KEY not in logged_in.session and "_auth_user_id" not in logged_in.session
    event = AuthEvent.objects.get(kind="refresh", success=False)
    assert "refused" in event.reason


def test_failed_refresh_gives_json_clients_a_401(logged_in, auth_emulator):
    data = expire_soon(logged_in, seconds=-1)
    auth_emulator.control.end_session(data["claims"]["sid"])
    response = logged_in.get("/whoami/", headers={"accept": "application/json"})
    assert response.status_code == 401 and response.json()["reason"].startswith("refresh failed")


def test_scalekit_outage_keeps_a_still_valid_token(logged_in, auth_emulator):
    expire_soon(logged_in, seconds=20)
    auth_emulator.control.set_faults(unavailable_ratio=1.0, methods=["/oauth/token"])
    response = logged_in.get("/whoami/")
    assert response.status_code == 200
    assert SESSION_KEY in logged_in.session


def test_concurrent_refreshes_of_one_session_call_scalekit_once(logged_in, auth_emulator):
    data = expire_soon(logged_in, seconds=-1)
    results, errors = [], []
    barrier = threading.Barrier(6)

    def refresh():
        barrier.wait()
        try:
            results.append(token_session.refresh(data))
        except token_session.RefreshFailed as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r["access_token"] for r in results}) == 1
    assert auth_emulator.control.counters()["calls"]["/oauth/token"] == 1


def test_refresh_lock_works_across_processes_through_redis(
    logged_in, auth_emulator, redis_server, settings
):
    """Two processes sharing Redis (here: two cache clients) refresh one session once."""
    settings.CACHES = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.rsplit("/", 1)[0] + "/3",
        },
    }
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CACHE_ALIAS": "shared"}
    get_client()  # rebuilt after the settings change (its own token request): count refreshes only
    auth_emulator.control.reset_counters()
    caches["shared"].clear()
    data = expire_soon(logged_in, seconds=-1)
    lock_key, result_key = token_session._keys(data["refresh_token"])
    caches["shared"].add(lock_key, 1, timeout=5)  # another process holds the lock...

    def other_process_finishes():
        time.sleep(0.3)
        caches["shared"].set(result_key, {**data, "access_token": "from-the-other-process"}, 60)

    threading.Thread(target=other_process_finishes).start()
    fresh = token_session.refresh(data)
    assert fresh["access_token"] == "from-the-other-process"  # waited for it, did not refresh
    assert auth_emulator.control.counters()["calls"].get("/oauth/token", 0) == 0


def test_kill_switch_ends_scalekit_sessions_at_once(logged_in, admin_client):
    assert logged_in.get("/whoami/").status_code == 200
    response = admin_client.post(
        "/admin/scalekit_auth/rolloutsettings/add/",
        {"percentage": 100, "allow_list": "", "deny_list": ""},
    )
    assert response.status_code == 302
    assert RolloutSettings.objects.get().enabled is False  # the unticked checkbox
    response = logged_in.get("/profile/")
    assert response.status_code == 302 and response["Location"].startswith("/auth/login/")
    assert "_auth_user_id" not in logged_in.session
    assert AuthEvent.objects.get(kind="logout", success=False).reason.startswith("kill switch")
    # The login now goes to the legacy login page.
    assert (
        logged_in.get("/auth/login/?next=/profile/")["Location"]
        == "/accounts/login/?next=%2Fprofile%2F"
    )


def test_key_rotation_mid_session_keeps_the_user_logged_in(logged_in, auth_emulator):
    """The login fetched the JWKS a moment ago; the refreshed token is signed with a key made
    since. It came from Scalekit's token endpoint, so the JWKS is refetched at once."""
    before = expire_soon(logged_in)
    rotation = auth_emulator.control.rotate_keys(grace_seconds=60)

    response = logged_in.get("/whoami/")

    assert response.status_code == 200, response.content
    after = logged_in.session[SESSION_KEY]
    assert jwt.get_unverified_header(before["access_token"])["kid"] == rotation["old_kid"]
    assert jwt.get_unverified_header(after["access_token"])["kid"] == rotation["new_kid"]
    assert not AuthEvent.objects.filter(success=False).exists()


def test_deactivating_a_user_ends_all_its_sessions_at_once(logged_in, auth_emulator):
    other_browser = Client()
    login(other_browser, auth_emulator, "ada@acme.example")
    assert ScalekitSession.objects.count() == 2
    for browser in (logged_in, other_browser):
        assert browser.get("/whoami/").status_code == 200

    user = get_user_model().objects.get()
    user.is_active = False
    user.save()  # as the admin's change form or the webhook handler does

    for browser in (logged_in, other_browser):
        response = browser.get("/whoami/", headers={"accept": "application/json"})
        assert response.status_code == 401
    assert ScalekitSession.objects.count() == 0


def test_a_user_deactivated_behind_our_back_is_logged_out_at_the_next_refresh(
    logged_in, auth_emulator
):
    get_user_model().objects.update(is_active=False)  # no save(), no signal
    expire_soon(logged_in)

    response = logged_in.get("/whoami/", headers={"accept": "application/json"})

    assert response.status_code == 401
    assert response.json()["reason"] == "the Django user is inactive or gone"
    assert auth_emulator.control.counters()["calls"].get("/oauth/token", 0) == 0
    assert SESSION_KEY not in logged_in.session
