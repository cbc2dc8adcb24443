"""A Scalekit session opened in-process (the runtime part behind readiness's request probes)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from scalekit_auth.impersonation import impersonate
from scalekit_auth.models import ScalekitIdentity

from .factories import UserFactory

pytestmark = pytest.mark.django_db

BACKEND = "scalekit_auth.backends.ScalekitBackend"


def test_views_see_the_user_and_the_claims(client):
    user = UserFactory(username="ada")
    claims = impersonate(
        client, user, backend=BACKEND, roles=["finance"], organization_id="org_probe"
    )
    assert client.get("/whoami/").json() == {
        "user_id": claims["sub"],
        "organization_id": "org_probe",
        "roles": ["finance"],
    }
    assert client.session["_auth_user_backend"] == BACKEND
    identity = ScalekitIdentity.objects.get(user=user)
    assert (identity.scalekit_user_id, identity.organization_id) == (claims["sub"], "org_probe")


def test_an_unlisted_backend_is_refused(client, settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    with pytest.raises(ImproperlyConfigured, match="backend 'scalekit_auth.backends.Scalek"):
        impersonate(client, UserFactory(), backend=BACKEND)
    assert "_auth_user_id" not in client.session
    assert not ScalekitIdentity.objects.exists()
