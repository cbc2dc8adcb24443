"""What the admin dashboard and the exported report show, computed from the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .catalogue import CHECKLISTS
from .models import ChecklistItem, CheckResult, CheckRun, ItemStatus
from .registry import all_probes
from .status import (
    SectionProgress,
    latest_results,
    latest_signoff,
    newest_results,
    section_progress,
    signoff_problem,
)

STATUS_RANK = {ItemStatus.FAILING: 0, ItemStatus.TODO: 1}


@dataclass
class Change:
    probe_id: str
    title: str
    item_key: str
    before: str
    after: str
    message: str

    @property
    def worse(self) -> bool:
        good = ("pass", "skip")
        return self.before in good and self.after not in good


#: How many runs before the compared one are searched first for each probe's previous result.
RECENT_RUNS = 20


def previous_statuses(
    run: CheckRun, probe_ids: set[str], network_probes: set[str]
) -> dict[str, str]:
    """The status of each probe's newest result stored before ``run`` (a network probe's: from a
    run with network), in three queries however long the history.

    The ``RECENT_RUNS`` runs before ``run`` nearly always hold every probe, and are read through
    the run index; only probes they lack (a probe that ran long ago, a network probe after many
    offline runs) are looked up in the older history.
    """
    counted = CheckResult.objects.exclude(probe_id__in=network_probes, run__network=False)
    recent = list(
        CheckRun.objects.filter(started_at__lt=run.started_at)
        .order_by("-started_at", "-pk")
        .values_list("pk", "started_at")[:RECENT_RUNS]
    )
    statuses = dict(
        newest_results(counted.filter(run__in=[pk for pk, _ in recent]), probe_ids).values_list(
            "probe_id", "status"
        )
    )
    missing = probe_ids - set(statuses)
    if missing and len(recent) == RECENT_RUNS:
        # Older than the oldest recent run: ties with it are among the recent ones already.
        older = counted.filter(run__started_at__lt=recent[-1][1])
        statuses.update(newest_results(older, missing).values_list("probe_id", "status"))
    return statuses


def changes_since_previous(run: CheckRun | None) -> list[Change]:
    """Probes whose outcome in ``run`` differs from their previous stored outcome.

    A network probe in a run without network probes did not run: its skip is no change, and
    such skips are not what a later run is compared with either.
    """
    if run is None:
        return []
    network = {p.id for p in all_probes() if p.uses_network}
    results = [
        result
        for result in run.results.select_related("item").order_by("probe_id")
        if run.network or result.probe_id not in network
    ]
    if not results:
        return []
    previous = previous_statuses(run, {r.probe_id for r in results}, network)
    return [
        Change(
            result.probe_id,
            result.title,
            result.item.key if result.item else "",
            previous[result.probe_id],
            result.status,
            result.message,
        )
        for result in results
        if previous.get(result.probe_id, result.status) != result.status
    ]


def open_blockers(progress: list[SectionProgress]) -> list[dict[str, Any]]:
    """Blocking items not done, failing ones first, then in checklist order."""
    rows = []
    for position, row in enumerate(progress):
        for item in row.open_blockers:
            rows.append(
                {
                    "item": item,
                    "section": row.section,
                    "blocked": row.is_blocked,
                    "rank": (STATUS_RANK.get(item.status, 2), position, item.order),
                }
            )
    return sorted(rows, key=lambda r: r["rank"])


def dashboard_context() -> dict[str, Any]:
    progress = section_progress()
    last_run = CheckRun.objects.order_by("-started_at", "-pk").first()
    items = [i for row in progress for i in row.items]
    totals = {status.value: 0 for status in ItemStatus}
    for item in items:
        totals[item.status] += 1
    done = sum(1 for i in items if i.is_done)
    blockers = open_blockers(progress)
    return {
        "checklists": [
            {
                "key": key,
                "title": title,
                "sections": [r for r in progress if r.section.checklist == key],
            }
            for key, title in CHECKLISTS.items()
        ],
        "blockers": blockers,
        # What to work on now: failing blockers, and open ones in sections not waiting on others.
        "actionable": [
            b for b in blockers if b["item"].status == ItemStatus.FAILING or not b["blocked"]
        ],
        "waiting": [b for b in blockers if b["item"].status != ItemStatus.FAILING and b["blocked"]],
        "last_run": last_run,
        "changes": changes_since_previous(last_run),
        "totals": totals,
        "done": done,
        "total": len(items),
        "percent": round(100 * done / len(items)) if items else 100,
        "probe_count": len(all_probes()),
        "status_labels": dict(ItemStatus.choices),
    }


def item_report(item: ChecklistItem) -> dict[str, Any]:
    signoff = latest_signoff(item)
    return {
        "item": item,
        "results": sorted(latest_results(item), key=lambda r: r.probe_id),
        "signoff": signoff,
        "signoff_problem": signoff_problem(signoff, item) if signoff else "",
    }


def report_context() -> dict[str, Any]:
    context = dashboard_context()
    for checklist in context["checklists"]:
        checklist["rows"] = [
            {"progress": row, "items": [item_report(i) for i in row.items]}
            for row in checklist["sections"]
        ]
    context["generated_at"] = timezone.now()
    return context
