"""Test helpers for projects that install ``scalekit_auth``: log a test client in as a Scalekit
user without a Scalekit environment.

    from scalekit_auth.testing import scalekit_login

    def test_reports_need_the_finance_role(client, django_user_model):
        user = django_user_model.objects.create_user("ada")
        scalekit_login(client, user, roles=["finance"], organization_id="org_1")
        assert client.get("/reports/").status_code == 200

For tests against the real flow, use the emulator: ``scalekit_auth.emulator.testing``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .backends import scalekit_backend_path
from .impersonation import impersonate


def scalekit_login(
    client: Any,
    user: Any,
    *,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    organization_id: str = "org_test",
    scalekit_user_id: str | None = None,
    expires_in: int = 3600,
) -> dict[str, Any]:
    """Log ``client`` in as ``user`` with these Scalekit claims; return the claims.

    The session holds no real tokens, so nothing is refreshed before ``expires_in`` seconds.
    The login is made with the project's own entry for ``ScalekitBackend`` (or its subclass)
    in AUTHENTICATION_BACKENDS, as a real login would be.
    """
    backend = scalekit_backend_path()
    if backend is None:
        raise ImproperlyConfigured(
            "scalekit_login() needs scalekit_auth.backends.ScalekitBackend, or a subclass of it, "
            "in AUTHENTICATION_BACKENDS; it lists "
            f"{', '.join(settings.AUTHENTICATION_BACKENDS) or 'nothing'}."
        )
    return impersonate(
        client,
        user,
        backend=backend,
        roles=roles,
        permissions=permissions,
        organization_id=organization_id,
        scalekit_user_id=scalekit_user_id,
        expires_in=expires_in,
    )
