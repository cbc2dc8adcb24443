"""Run probes, store their results, refresh the checklist, and say what changed.

The one entry point for the admin button and action, ``manage.py readiness_check`` and the Celery
beat task. A probe that raises is reported as an *error* with a generic message (the exception text
could hold a secret); the traceback goes to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .catalogue import SILENCED_CHECKS_WAIVER, WAIVER_HINT
from .fingerprints import fingerprint
from .models import ChecklistItem, CheckResult, CheckRun, ItemStatus, SignOff
from .registry import (
    BAD_OUTCOMES,
    ERROR,
    OUTCOMES,
    SKIP,
    WAIVED,
    WARN,
    Probe,
    ProbeContext,
    ProbeResult,
    all_probes,
)
from .status import active_signoff, refresh_item

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    probe: Probe
    result: ProbeResult
    duration_ms: float
    fingerprint: str
    item_status: str = ""
    previous: str = ""

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def is_failing_blocker(self) -> bool:
        """A blocker that fails and is neither signed off (a waiver) nor not applicable."""
        return (
            self.probe.is_blocker
            and self.status in BAD_OUTCOMES
            and self.item_status not in (ItemStatus.SIGNED_OFF, ItemStatus.NOT_APPLICABLE)
        )

    @property
    def changed(self) -> bool:
        return bool(self.previous) and self.previous != self.status

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.probe.id,
            "item": self.probe.item,
            "title": self.probe.title,
            "kind": self.probe.kind,
            "severity": self.probe.severity,
            "status": self.status,
            "message": self.result.message,
            "observed": self.result.observed,
            "expected": self.result.expected,
            "hint": self.result.hint,
            "evidence": self.result.evidence,
            "duration_ms": self.duration_ms,
            "fingerprint": self.fingerprint,
            "item_status": self.item_status,
            "previous": self.previous,
            "failing_blocker": self.is_failing_blocker,
        }


@dataclass
class RunReport:
    outcomes: list[Outcome] = field(default_factory=list)
    run: CheckRun | None = None

    @property
    def failing_blockers(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.is_failing_blocker]

    @property
    def changes(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.changed]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.pk if self.run else None,
            "ok": not self.failing_blockers,
            "counts": self.counts(),
            "failing_blockers": [o.probe.id for o in self.failing_blockers],
            "changes": [
                {"id": o.probe.id, "before": o.previous, "after": o.status} for o in self.changes
            ],
            "results": [o.as_dict() for o in self.outcomes],
        }


def execute(probe: Probe, ctx: ProbeContext) -> Outcome:
    """Run one probe safely and time it."""
    started = time.perf_counter()
    if probe.uses_network and not ctx.network:
        result = ProbeResult(SKIP, "Skipped: network probes are off (--no-network).")
    else:
        try:
            result = probe.run(ctx)
        except Exception as exc:
            logger.exception("readiness probe %s raised", probe.id)
            result = ProbeResult(
                ERROR, f"The probe raised {type(exc).__name__}; see the server log."
            )
    if result.status in BAD_OUTCOMES - {WAIVED} and probe.id in settings.SILENCED_SYSTEM_CHECKS:
        result = ProbeResult(
            WAIVED,
            f"Silenced in SILENCED_SYSTEM_CHECKS: {result.message}",
            observed=result.observed,
            expected=result.expected,
            hint=WAIVER_HINT,
            evidence=result.evidence,
        )
    duration = round((time.perf_counter() - started) * 1000, 2)
    return Outcome(probe, result, duration, fingerprint(probe.reads))


def silenced_ids(result: ProbeResult, probe: Probe) -> set[str]:
    """The SILENCED_SYSTEM_CHECKS entries that made ``result`` a waiver."""
    waived = result.evidence.get("waived") if isinstance(result.evidence, dict) else None
    if waived:
        return {str(line).split(":", 1)[0] for line in waived}
    return {probe.id}


def waiver_signoff() -> SignOff | None:
    """The active sign-off of the waiver item, if any."""
    item = (
        ChecklistItem.objects.select_related("section")
        .filter(key=SILENCED_CHECKS_WAIVER, retired=False)
        .first()
    )
    return active_signoff(item) if item is not None else None


def accept_signed_waivers(outcomes: list[Outcome]) -> None:
    """Turn waivers justified by an active sign-off of the waiver item into warnings.

    A silenced check counts against its item until that sign-off covers it; from then on it
    shows as a warning that names the sign-off. The waiver item watches SILENCED_SYSTEM_CHECKS,
    so silencing one more check makes the sign-off stale and every waiver counts again.
    """
    waived = [o for o in outcomes if o.status == WAIVED]
    if not waived:
        return
    signoff = waiver_signoff()
    if signoff is None:
        return
    covered = set(signoff.covers)
    for outcome in waived:
        ids = silenced_ids(outcome.result, outcome.probe)
        if not ids <= covered:
            continue
        result = outcome.result
        outcome.result = ProbeResult(
            WARN,
            f"Waiver signed off in {SILENCED_CHECKS_WAIVER} by {signoff.signer_name} on "
            f"{signoff.signed_at:%Y-%m-%d} (sign-off #{signoff.pk}): {result.message}",
            observed=result.observed,
            expected=result.expected,
            hint=result.hint,
            evidence={**result.evidence, "waiver_signoff": signoff.pk},
        )


def select_probes(
    *,
    sections: Iterable[str] = (),
    items: Iterable[str] = (),
    kinds: Iterable[str] = (),
    ids: Iterable[str] = (),
) -> list[Probe]:
    """Probes filtered by section key, item key, kind and id (each filter optional)."""
    sections, items, kinds, ids = set(sections), set(items), set(kinds), set(ids)
    probes = all_probes()
    if sections:
        keys = set(
            ChecklistItem.objects.filter(section__key__in=sections).values_list("key", flat=True)
        )
        probes = [p for p in probes if p.item in keys]
    if items:
        probes = [p for p in probes if p.item in items]
    if kinds:
        probes = [p for p in probes if p.kind in kinds]
    if ids:
        probes = [p for p in probes if p.id in ids]
    return probes


def previous_statuses(probe_ids: Iterable[str]) -> dict[str, str]:
    latest: dict[str, str] = {}
    rows = (
        CheckResult.objects.filter(probe_id__in=list(probe_ids))
        .order_by("probe_id", "-run__started_at", "-pk")
        .values_list("probe_id", "status")
    )
    for probe_id, status in rows:
        latest.setdefault(probe_id, status)
    return latest


def run_checks(
    probes: Iterable[Probe] | None = None,
    *,
    network: bool = True,
    store: bool = True,
    trigger: str = CheckRun.Trigger.API,
    user: Any = None,
) -> RunReport:
    """Run ``probes`` (all by default); store the results and refresh the items when ``store``."""
    probes = list(all_probes() if probes is None else probes)
    ctx = ProbeContext(network=network)
    started = timezone.now()
    report = RunReport([execute(p, ctx) for p in probes])
    accept_signed_waivers(report.outcomes)
    previous = previous_statuses(p.id for p in probes)
    items = {
        i.key: i
        for i in ChecklistItem.objects.select_related("section").filter(
            key__in={p.item for p in probes}
        )
    }
    for outcome in report.outcomes:
        outcome.previous = previous.get(outcome.probe.id, "")
    if store:
        with transaction.atomic():
            report.run = CheckRun.objects.create(
                started_at=started,
                trigger=trigger,
                triggered_by=user if getattr(user, "pk", None) else None,
                network=network,
            )
            CheckResult.objects.bulk_create(
                [
                    CheckResult(
                        run=report.run,
                        item=items.get(o.probe.item),
                        probe_id=o.probe.id,
                        title=o.probe.title,
                        kind=o.probe.kind,
                        severity=o.probe.severity,
                        status=o.status,
                        message=o.result.message[:5000],
                        observed=o.result.observed,
                        expected=o.result.expected,
                        hint=o.result.hint,
                        evidence=o.result.evidence,
                        duration_ms=o.duration_ms,
                        fingerprint=o.fingerprint,
                        created_at=started,
                    )
                    for o in report.outcomes
                ]
            )
            ChecklistItem.objects.filter(key__in=set(items)).update(last_checked_at=started)
            # Every item, not only those probed: sign-offs expire and go stale with the settings.
            for item in ChecklistItem.objects.select_related("section").filter(retired=False):
                refresh_item(item, context=f"check run #{report.run.pk}")
                items[item.key] = item
    for outcome in report.outcomes:
        item = items.get(outcome.probe.item)
        outcome.item_status = item.status if item is not None else ""
    if report.run is not None:
        CheckRun.objects.filter(pk=report.run.pk).update(
            finished_at=timezone.now(),
            counts=report.counts(),
            failing_blockers=len(report.failing_blockers),
        )
        report.run.refresh_from_db()
    return report
