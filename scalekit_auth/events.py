"""The auth event log: one ``AuthEvent`` row per login, refresh, logout, webhook or refused
bearer token, and a log line on the ``scalekit_auth`` logger. Tokens are never logged."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from .models import AuthEvent

logger = logging.getLogger("scalekit_auth")


def record(
    kind: str,
    success: bool,
    reason: str = "",
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    claims: dict[str, Any] | None = None,
) -> AuthEvent:
    claims = claims or {}
    event = AuthEvent.objects.create(
        kind=kind,
        success=success,
        reason=reason[:255],
        user=user if getattr(user, "pk", None) else None,
        scalekit_user_id=claims.get("sub", "")[:64],
        organization_id=claims.get("oid", "")[:64],
        ip_address=request.META.get("REMOTE_ADDR") if request is not None else None,
    )
    level = logging.INFO if success else logging.WARNING
    logger.log(level, "scalekit_auth %s %s: %s", kind, "ok" if success else "failed", reason)
    return event
