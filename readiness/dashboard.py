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


def changes_since_previous(run: CheckRun | None) -> list[Change]:
    """Probes whose outcome in ``run`` differs from their previous stored outcome.

    A network probe in a run without network probes did not run: its skip is no change, and
    such skips are not what a later run is compared with either.
    """
    if run is None:
        return []
    network = {p.id for p in all_probes() if p.uses_network}
    changes = []
    for result in run.results.select_related("item").order_by("probe_id"):
        uses_network = result.probe_id in network
        if uses_network and not run.network:
            continue
        earlier = CheckResult.objects.filter(
            probe_id=result.probe_id, run__started_at__lt=run.started_at
        )
        if uses_network:
            earlier = earlier.filter(run__network=True)
        previous = (
            earlier.order_by("-run__started_at", "-pk").values_list("status", flat=True).first()
        )
        if previous and previous != result.status:
            changes.append(
                Change(
                    result.probe_id,
                    result.title,
                    result.item.key if result.item else "",
                    previous,
                    result.status,
                    result.message,
                )
            )
    return changes


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
