"""The dashboard's "changed since the previous run": right, and in a constant number of queries
however long the history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from readiness.dashboard import RECENT_RUNS, changes_since_previous
from readiness.models import ChecklistItem, CheckResult, CheckRun
from readiness.registry import all_probes

pytestmark = pytest.mark.django_db

OFFLINE = [p for p in all_probes() if not p.uses_network]
NETWORK = next(p for p in all_probes() if p.uses_network)
START = timezone.now() - timedelta(days=400)


def add_run(hour: int, statuses: dict[str, str], *, network: bool = True) -> CheckRun:
    """A run ``hour`` hours after START with one result per probe of ``statuses``."""
    started = START + timedelta(hours=hour)
    run = CheckRun.objects.create(started_at=started, trigger="schedule", network=network)
    items = dict(ChecklistItem.objects.values_list("key", "pk"))
    probes = {p.id: p for p in all_probes()}
    CheckResult.objects.bulk_create(
        CheckResult(
            run=run,
            item_id=items.get(probes[probe_id].item),
            probe_id=probe_id,
            title=probes[probe_id].title,
            kind=probes[probe_id].kind,
            severity=probes[probe_id].severity,
            status=status,
            message=f"{probe_id} {status}",
            created_at=started,
        )
        for probe_id, status in statuses.items()
    )
    return run


def changes(run: CheckRun) -> tuple[list[tuple[str, str, str]], int]:
    with CaptureQueriesContext(connection) as queries:
        found = changes_since_previous(run)
    return [(c.probe_id, c.before, c.after) for c in found], len(queries)


def test_query_count_does_not_grow_with_history_or_probes():
    few = {p.id: "pass" for p in OFFLINE[:2]}
    add_run(0, few)
    short, short_queries = changes(add_run(1, {**few, OFFLINE[0].id: "fail"}))
    assert short == [(OFFLINE[0].id, "pass", "fail")]

    every = {p.id: "pass" for p in OFFLINE}
    for hour in range(2, 2 + 3 * RECENT_RUNS):
        add_run(hour, every)
    last = add_run(100, {**every, OFFLINE[1].id: "warn"})
    long, long_queries = changes(last)
    assert long == [(OFFLINE[1].id, "pass", "warn")]
    assert long_queries == short_queries <= 4


def test_probe_last_seen_before_the_recent_runs():
    """A probe absent from the recent runs is compared with its older result (one more query)."""
    probe, other = OFFLINE[0].id, OFFLINE[1].id
    add_run(0, {probe: "fail", other: "pass"})
    add_run(1, {probe: "pass", other: "pass"})
    for hour in range(2, 2 + RECENT_RUNS + 5):
        add_run(hour, {other: "pass"})
    found, queries = changes(add_run(200, {probe: "fail", other: "pass"}))
    assert found == [(probe, "pass", "fail")]
    assert queries <= 4


def test_recent_run_order_is_by_start_not_by_id():
    """Runs stored out of order (a backfill) are compared by when they started."""
    probe = OFFLINE[0].id
    add_run(5, {probe: "fail"})
    for hour in range(0, RECENT_RUNS + 3):  # created later, started earlier
        add_run(hour - 100, {probe: "pass"})
    found, _ = changes(add_run(10, {probe: "pass"}))
    assert found == [(probe, "fail", "pass")]


def test_network_probe_skipped_offline_is_no_change_and_not_compared():
    add_run(0, {NETWORK.id: "fail"})
    for hour in range(1, 1 + RECENT_RUNS + 2):
        add_run(hour, {NETWORK.id: "skip"}, network=False)
    offline, _ = changes(add_run(100, {NETWORK.id: "skip"}, network=False))
    assert offline == []
    found, _ = changes(add_run(101, {NETWORK.id: "pass"}))
    assert found == [(NETWORK.id, "fail", "pass")]
