"""The test helper shipped for projects: a Scalekit login without Scalekit."""

from __future__ import annotations

import pytest

from scalekit_auth.testing import scalekit_login

from .factories import UserFactory

pytestmark = pytest.mark.django_db


def test_scalekit_login_sets_user_and_claims(client):
    user = UserFactory(username="ada")
    scalekit_login(client, user, roles=["finance"], organization_id="org_9")
    answer = client.get("/whoami/").json()
    assert answer == {
        "user_id": f"usr_test{user.pk}",
        "organization_id": "org_9",
        "roles": ["finance"],
    }
    assert client.get("/profile/").status_code == 200


def test_without_it_the_views_need_a_login(client):
    assert client.get("/whoami/").status_code == 302
