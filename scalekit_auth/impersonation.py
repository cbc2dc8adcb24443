"""Open a Scalekit session for a user in this process, without a round trip to Scalekit.

Runtime code, not a test helper: ``readiness``'s request probes log a temporary user in with it
inside web and Celery workers, and the test helper ``scalekit_auth.testing.scalekit_login`` does
the same for a project's tests. The session holds the claims ``request.scalekit`` reads and no
token, so nothing is refreshed before the claims expire and nothing leaves the process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .context import context_claims
from .models import ScalekitIdentity
from .session import SESSION_KEY


def impersonate(
    client: Any,
    user: Any,
    *,
    backend: str,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    organization_id: str = "org_test",
    scalekit_user_id: str | None = None,
    expires_in: int = 3600,
) -> dict[str, Any]:
    """Log the Django test ``client`` in as ``user`` with these Scalekit claims; return them.

    ``backend`` is the AUTHENTICATION_BACKENDS entry the login is recorded with; Django drops a
    session whose backend is not listed there, so an unlisted one is refused. The user's
    ``ScalekitIdentity`` is created or updated to match the claims.
    """
    if backend not in settings.AUTHENTICATION_BACKENDS:
        raise ImproperlyConfigured(
            f"impersonate(): backend {backend!r} is not in AUTHENTICATION_BACKENDS "
            f"({', '.join(settings.AUTHENTICATION_BACKENDS) or 'empty'}); Django would log "
            "the session out on its first request."
        )
    roles, permissions = list(roles), list(permissions)
    claims = context_claims(
        {
            "sub": scalekit_user_id or f"usr_test{user.pk}",
            "oid": organization_id,
            "sid": f"ses_test{user.pk}",
            "roles": roles,
            "permissions": permissions,
            "exp": int(time.time()) + expires_in,
        }
    )
    ScalekitIdentity.objects.update_or_create(
        user=user,
        defaults={
            "scalekit_user_id": claims["sub"],
            "organization_id": organization_id,
            "roles": roles,
            "linked_by": "created",
        },
    )
    client.force_login(user, backend=backend)
    session = client.session
    session[SESSION_KEY] = {
        "access_token": "",
        "refresh_token": "",
        "id_token": "",
        "expires_at": claims["exp"],
        "claims": claims,
    }
    session.save()
    return claims
