"""Percentage rollout with allow and deny lists, and the kill switch."""

from __future__ import annotations

import pytest

from scalekit_auth import rollout
from scalekit_auth.models import RolloutSettings

from .conftest import add_user, finish
from .factories import UserFactory

pytestmark = pytest.mark.django_db

EMAILS = [f"user{n}@acme.example" for n in range(2000)]


def test_buckets_are_stable_and_spread():
    r = rollout.Rollout(True, 30, frozenset(), frozenset())
    chosen = [e for e in EMAILS if r.uses_scalekit(e)]
    assert 0.26 < len(chosen) / len(EMAILS) < 0.34
    assert chosen == [e for e in EMAILS if r.uses_scalekit(e.upper())]  # case does not matter


def test_raising_the_percentage_only_adds_users():
    at_30 = {
        e for e in EMAILS if rollout.Rollout(True, 30, frozenset(), frozenset()).uses_scalekit(e)
    }
    at_60 = {
        e for e in EMAILS if rollout.Rollout(True, 60, frozenset(), frozenset()).uses_scalekit(e)
    }
    assert at_30 < at_60


def test_deny_beats_allow_beats_percentage():
    r = rollout.Rollout(
        True, 0, frozenset({"@acme.example", "vip@globex.example"}), frozenset({"bob@acme.example"})
    )
    assert r.uses_scalekit("ann@acme.example") and r.uses_scalekit("vip@globex.example")
    assert not r.uses_scalekit("bob@acme.example") and not r.uses_scalekit("joe@globex.example")
    assert not rollout.Rollout(False, 100, frozenset({"@acme.example"}), frozenset()).uses_scalekit(
        "ann@acme.example"
    )


def test_partial_rollout_asks_the_email_then_routes_it(client, sdk, auth_emulator):
    RolloutSettings.objects.create(percentage=0, allow_list="@acme.example")
    form = client.get("/auth/login/?next=/profile/")
    assert form.status_code == 200 and b'name="email"' in form.content

    legacy = client.post("/auth/login/", {"email": "joe@globex.example", "next": "/profile/"})
    assert legacy["Location"] == "/accounts/login/?next=%2Fprofile%2F&username=joe%40globex.example"

    add_user(sdk, "ann@acme.example")
    to_scalekit = client.post("/auth/login/", {"email": "ann@acme.example", "next": "/profile/"})
    assert to_scalekit["Location"].startswith(auth_emulator.url + "/oauth/authorize?")
    assert "login_hint=ann%40acme.example" in to_scalekit["Location"]
    assert (
        finish(client, auth_emulator, to_scalekit["Location"], "ann@acme.example")["Location"]
        == "/profile/"
    )


def test_rollout_row_changes_take_effect_at_once_in_this_process(auth_emulator):
    assert rollout.current().enabled and rollout.current().percentage == 100
    RolloutSettings.objects.create(enabled=False)
    assert not rollout.current().enabled


def test_saved_row_is_always_the_single_row():
    RolloutSettings.objects.create(percentage=10)
    RolloutSettings(percentage=20).save()
    assert list(RolloutSettings.objects.values_list("pk", "percentage")) == [(1, 20)]


def test_after_the_kill_switch_a_non_staff_user_logs_in_at_the_legacy_login(client, auth_emulator):
    """The rollback sends everyone to LEGACY_LOGIN_URL: the site's own password login, which
    takes the accounts the admin login would refuse."""
    UserFactory(username="joe", is_staff=False)
    RolloutSettings.objects.create(enabled=False)

    legacy = client.get("/auth/login/?next=/profile/")["Location"]
    assert legacy == "/accounts/login/?next=%2Fprofile%2F"
    assert client.get(legacy).status_code == 200
    response = client.post(
        legacy,
        {"username": "joe", "password": "correct horse battery staple", "next": "/profile/"},
    )

    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert client.get("/profile/").status_code == 200
