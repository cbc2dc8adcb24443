"""Run probes, store their results, refresh the checklist, and say what changed.

The one entry point for the admin button and action, ``manage.py readiness_check`` and the Celery
beat task. A probe that raises is reported as an *error* with a generic message (the exception text
could hold a secret); the traceback goes to the log.

A run stores what each probe found (a silenced check as ``waived``, a network probe of a run
without network as ``skip``); how that counts for its item (a waiver signed off in H05, a skip that
hides nothing) is decided when the item's status is derived (``status.py``), so that a sign-off
given or revoked later counts at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .catalogue import WAIVER_HINT
from .fingerprints import fingerprint
from .models import ChecklistItem, CheckResult, CheckRun, ItemStatus
from .registry import (
    BAD_OUTCOMES,
    ERROR,
    OUTCOMES,
    SKIP,
    WAIVED,
    Probe,
    ProbeContext,
    ProbeResult,
    all_probes,
)
from .status import evaluate, latest_results, newest_results, refresh_item, with_waivers

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One probe's outcome in a run.

    ``found`` is what the probe found (what is stored); ``result`` is how it counts now, the same
    but for a silenced check that the active H05 sign-off covers, shown as a warning naming it.
    """

    probe: Probe
    result: ProbeResult
    duration_ms: float
    fingerprint: str
    #: False when the run did not run the probe (a network probe of a run without network).
    ran: bool = True
    found: ProbeResult | None = None
    item_status: str = ""
    previous: str = ""

    def __post_init__(self) -> None:
        if self.found is None:
            self.found = self.result

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def is_failing_blocker(self) -> bool:
        """A blocker probe that fails on an item that is failing (so neither waived by a sign-off
        nor not applicable): the same rule as the dashboard's failing blockers."""
        return (
            self.probe.is_blocker
            and self.status in BAD_OUTCOMES
            and self.item_status == ItemStatus.FAILING
        )

    @property
    def changed(self) -> bool:
        """What the probe found differs from its previous stored result (a probe the run did not
        run changed nothing)."""
        return self.ran and bool(self.previous) and self.previous != self.found.status

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.probe.id,
            "item": self.probe.item,
            "title": self.probe.title,
            "kind": self.probe.kind,
            "severity": self.probe.severity,
            "status": self.status,
            "found": self.found.status,
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
                {"id": o.probe.id, "before": o.previous, "after": o.found.status}
                for o in self.changes
            ],
            "results": [o.as_dict() for o in self.outcomes],
        }


def execute(probe: Probe, ctx: ProbeContext) -> Outcome:
    """Run one probe safely and time it."""
    started = time.perf_counter()
    ran = ctx.network or not probe.uses_network
    if not ran:
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
    return Outcome(probe, result, duration, fingerprint(probe.reads), ran=ran)


def result_row(outcome: Outcome, item: ChecklistItem | None, created_at: datetime) -> CheckResult:
    """The (unsaved) row that stores what ``outcome``'s probe found."""
    found = outcome.found
    return CheckResult(
        item=item,
        probe_id=outcome.probe.id,
        title=outcome.probe.title,
        kind=outcome.probe.kind,
        severity=outcome.probe.severity,
        status=found.status,
        message=found.message[:5000],
        observed=found.observed,
        expected=found.expected,
        hint=found.hint,
        evidence=found.evidence,
        duration_ms=outcome.duration_ms,
        fingerprint=outcome.fingerprint,
        created_at=created_at,
    )


def count_waivers(outcomes: list[Outcome], rows: list[CheckResult]) -> list[CheckResult]:
    """Show each outcome as it counts now (a waiver signed off in H05 as a warning); returns the
    rows as they count, for deriving item statuses in memory."""
    counted = with_waivers(rows)
    for outcome, row, as_counted in zip(outcomes, rows, counted, strict=True):
        if as_counted is not row:
            outcome.result = ProbeResult(
                as_counted.status,
                as_counted.message,
                observed=outcome.found.observed,
                expected=outcome.found.expected,
                hint=outcome.found.hint,
                evidence=as_counted.evidence,
            )
    return counted


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
    """The status of each probe's latest stored result that ran (one query)."""
    rows = newest_results(CheckResult.objects.all(), probe_ids).values_list("probe_id", "status")
    return dict(rows)


def statuses_in_memory(
    items: dict[str, ChecklistItem], outcomes: list[Outcome], counted: list[CheckResult]
) -> dict[str, str]:
    """Each item's status as a stored run would make it, without writing anything: its latest
    stored results with this run's in their place (a probe the run did not run keeps its earlier
    real result)."""
    statuses = {}
    for key, item in items.items():
        results = {r.probe_id: r for r in latest_results(item)}
        for outcome, row in zip(outcomes, counted, strict=True):
            if outcome.probe.item != key:
                continue
            if outcome.ran:
                results[row.probe_id] = row
            else:
                results.setdefault(row.probe_id, row)
        statuses[key] = evaluate(item, list(results.values())).status
    return statuses


def run_checks(
    probes: Iterable[Probe] | None = None,
    *,
    network: bool = True,
    store: bool = True,
    trigger: str = CheckRun.Trigger.API,
    user: Any = None,
) -> RunReport:
    """Run ``probes`` (all by default); store the results and refresh the items when ``store``.

    Either way each outcome gets its item's status as this run makes it (without ``store``,
    derived in memory), so the failing blockers are the same with and without ``store``.
    """
    probes = list(all_probes() if probes is None else probes)
    ctx = ProbeContext(network=network)
    started = timezone.now()
    report = RunReport([execute(p, ctx) for p in probes])
    previous = previous_statuses(p.id for p in probes)
    items = {
        i.key: i
        for i in ChecklistItem.objects.select_related("section").filter(
            key__in={p.item for p in probes}
        )
    }
    rows = [result_row(o, items.get(o.probe.item), started) for o in report.outcomes]
    counted = count_waivers(report.outcomes, rows)
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
            for row in rows:
                row.run = report.run
            CheckResult.objects.bulk_create(rows)
            ChecklistItem.objects.filter(key__in=set(items)).update(last_checked_at=started)
            # Every item, not only those probed: sign-offs expire and go stale with the settings.
            statuses = {}
            for item in ChecklistItem.objects.select_related("section").filter(retired=False):
                refresh_item(item, context=f"check run #{report.run.pk}")
                statuses[item.key] = item.status
    else:
        statuses = statuses_in_memory(items, report.outcomes, counted)
    for outcome in report.outcomes:
        item = items.get(outcome.probe.item)
        outcome.item_status = statuses.get(outcome.probe.item, item.status if item else "")
    if report.run is not None:
        CheckRun.objects.filter(pk=report.run.pk).update(
            finished_at=timezone.now(),
            counts=report.counts(),
            failing_blockers=len(report.failing_blockers),
        )
        report.run.refresh_from_db()
    return report
