"""The auth event log: one ``AuthEvent`` row per login, refresh, logout, webhook or refused
bearer token, and a log line on the ``scalekit_auth`` logger. Tokens are never logged.

Refused events are throttled: anyone can send bad tokens or forged webhooks, and a row per
request would let them fill the table. For one (kind, reason, client IP), at most one row is
written per ``EVENT_THROTTLE_SECONDS``, through ``cache.add`` in the ``CACHE_ALIAS`` cache, so
the window is shared by every process using that cache; the refusals in between are logged at
DEBUG only. A refused row therefore means "at least one such refusal in that window". Successes
are always written.

Retention: ``purge()`` deletes events older than ``EVENT_RETENTION_DAYS``; run it daily with the
``scalekit_auth_purge_events`` command or from a scheduler.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .conf import app_settings
from .models import AuthEvent, WebhookEvent

logger = logging.getLogger("scalekit_auth")

THROTTLE_KEY_PREFIX = "scalekit_auth:event-throttle"
PURGE_BATCH_SIZE = 5000

# Bumped by forget_throttle(): keys of earlier windows are then never read again (they expire).
_generation = 0


def record(
    kind: str,
    success: bool,
    reason: str = "",
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    claims: dict[str, Any] | None = None,
) -> AuthEvent | None:
    """Write one event (and log it); None when a refused event is throttled (see the module)."""
    claims = claims or {}
    reason = reason[:255]
    ip_address = request.META.get("REMOTE_ADDR") if request is not None else None
    if not success and not _first_in_window(kind, reason, ip_address):
        logger.debug("scalekit_auth %s failed (throttled, no row): %s", kind, reason)
        return None
    event = AuthEvent.objects.create(
        kind=kind,
        success=success,
        reason=reason,
        user=user if getattr(user, "pk", None) else None,
        scalekit_user_id=claims.get("sub", "")[:64],
        organization_id=claims.get("oid", "")[:64],
        ip_address=ip_address,
    )
    level = logging.INFO if success else logging.WARNING
    logger.log(level, "scalekit_auth %s %s: %s", kind, "ok" if success else "failed", reason)
    return event


def throttle_key(kind: str, reason: str, ip_address: str | None) -> str:
    """The cache key of one (kind, reason, client IP) window (hashed: reasons hold spaces)."""
    digest = hashlib.sha256(f"{kind}\0{reason}\0{ip_address or ''}".encode()).hexdigest()[:32]
    return f"{THROTTLE_KEY_PREFIX}:{_generation}:{digest}"


def _first_in_window(kind: str, reason: str, ip_address: str | None) -> bool:
    seconds = app_settings.EVENT_THROTTLE_SECONDS
    if not seconds:
        return True
    try:
        return caches[app_settings.CACHE_ALIAS].add(
            throttle_key(kind, reason, ip_address), 1, timeout=seconds
        )
    except Exception:
        # A cache outage must not turn a refusal into a 500: write the row.
        logger.warning("scalekit_auth event throttle unavailable (cache error); row written")
        return True


def forget_throttle(**kwargs: Any) -> None:
    """Start new throttle windows in this process (connected to overrides of SCALEKIT_AUTH, so
    that one test's refusals do not silence the next test's)."""
    global _generation
    if kwargs.get("setting", "SCALEKIT_AUTH") == "SCALEKIT_AUTH":
        _generation += 1


@dataclass(frozen=True)
class PurgeResult:
    older_than_days: int
    cutoff: datetime
    dry_run: bool
    deleted: int
    by_kind: dict[str, int] = field(default_factory=dict)
    webhook_events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "older_than_days": self.older_than_days,
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "deleted": self.deleted,
            "by_kind": self.by_kind,
            "webhook_events": self.webhook_events,
        }


def purge(
    older_than_days: int | None = None, *, dry_run: bool = False, now: datetime | None = None
) -> PurgeResult:
    """Delete auth events created more than ``older_than_days`` (default
    ``EVENT_RETENTION_DAYS``) days ago, in batches; with ``dry_run``, only count them.

    Processed webhook events of the same age go too: they only guard against a redelivery being
    applied twice, and Scalekit refuses nothing older than ``WEBHOOK_TOLERANCE_SECONDS`` anyway.

    Plain Django, no Celery: schedule it however the project schedules work (a Celery beat
    task calling it, cron running ``manage.py scalekit_auth_purge_events``).
    """
    days = app_settings.EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"older_than_days must be an integer of at least 1, not {days!r}.")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = AuthEvent.objects.filter(created_at__lt=cutoff)
    old_webhooks = WebhookEvent.objects.filter(received_at__lt=cutoff)
    by_kind = dict(
        old.order_by().values_list("kind").annotate(n=Count("pk")).values_list("kind", "n")
    )
    if dry_run:
        deleted, webhooks = sum(by_kind.values()), old_webhooks.count()
    else:
        deleted, webhooks = _delete_in_batches(old), _delete_in_batches(old_webhooks)
        logger.info(
            "scalekit_auth purged %d auth event(s) and %d webhook event(s) older than %d days",
            deleted,
            webhooks,
            days,
        )
    return PurgeResult(days, cutoff, dry_run, deleted, dict(sorted(by_kind.items())), webhooks)


def _delete_in_batches(queryset: QuerySet) -> int:
    deleted = 0
    while batch := list(queryset.order_by("pk").values_list("pk", flat=True)[:PURGE_BATCH_SIZE]):
        with transaction.atomic():
            deleted += queryset.model.objects.filter(pk__in=batch).delete()[0]
    return deleted
