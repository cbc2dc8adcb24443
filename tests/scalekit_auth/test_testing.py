"""The test helper shipped for projects: a Scalekit login without Scalekit."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from scalekit_auth import decorators
from scalekit_auth.testing import scalekit_login

from . import project_backends
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


def test_scalekit_login_uses_the_projects_subclass_of_the_backend(client, settings):
    settings.AUTHENTICATION_BACKENDS = [project_backends.PATH, project_backends.LEGACY]
    scalekit_login(client, UserFactory(username="ada"))
    assert client.session["_auth_user_backend"] == project_backends.PATH
    assert client.get("/profile/").status_code == 200


def test_scalekit_login_without_the_backend_says_what_is_missing(client, settings):
    settings.AUTHENTICATION_BACKENDS = [project_backends.LEGACY]
    with pytest.raises(ImproperlyConfigured) as refused:
        scalekit_login(client, UserFactory(username="ada"))
    assert str(refused.value) == (
        "scalekit_login() needs scalekit_auth.backends.ScalekitBackend, or a subclass of it, in "
        f"AUTHENTICATION_BACKENDS; it lists {project_backends.LEGACY}."
    )
    assert "_auth_user_id" not in client.session


def test_the_decorator_does_not_take_djangos_name(client):
    """``scalekit_login_required`` answers JSON callers with 401, unlike Django's
    ``login_required``: the two must not be confused by their name."""
    assert not hasattr(decorators, "login_required")
    assert client.get("/whoami/", HTTP_ACCEPT="application/json").status_code == 401
    user = UserFactory(username="ada")
    client.force_login(user, backend=project_backends.LEGACY)  # the legacy login
    assert client.get("/whoami/").status_code == 302
    scalekit_login(client, user)
    assert client.get("/whoami/").status_code == 200
