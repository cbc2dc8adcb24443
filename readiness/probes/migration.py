"""Kind R: probes that read stored records: past network results and the migration ledger.

The ledger belongs to the ``migration`` app; it is read through ``apps.get_model`` so that this app
keeps working (with a clear failing result) where ``migration`` is not installed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from django.db import DatabaseError

from .. import contract
from ..conf import app_settings
from ..registry import (
    PASS,
    RECORDS,
    ProbeContext,
    ProbeResult,
    failed,
    passed,
    probe,
    warned,
)


def needs_ledger(
    func: Callable[[ProbeContext], ProbeResult],
) -> Callable[[ProbeContext], ProbeResult]:
    """Turn a missing ledger table into a clear failure instead of an error."""

    @functools.wraps(func)
    def wrapper(ctx: ProbeContext) -> ProbeResult:
        try:
            return func(ctx)
        except DatabaseError:
            return failed("The migration app's tables are missing; run manage.py migrate.")

    return wrapper


HISTORY_PROBES = ("readiness.E054", "readiness.E055", "readiness.E056")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@probe(
    "readiness.W059",
    item="E04",
    title="Scalekit reachability history",
    kind=RECORDS,
    reads=("READINESS.NETWORK_HISTORY", "READINESS.NETWORK_P95_MS"),
)
def reachability_history(ctx: ProbeContext) -> ProbeResult:
    from ..models import CheckResult

    size = int(app_settings.NETWORK_HISTORY)
    rows = list(
        CheckResult.objects.filter(probe_id__in=HISTORY_PROBES)
        .exclude(status="skip")
        .order_by("-run__started_at", "-pk")
        .values("probe_id", "status", "evidence")[: size * len(HISTORY_PROBES)]
    )
    if not rows:
        return warned("No network probe has run yet; run the readiness checks with the network.")
    failures = [r for r in rows if r["status"] != PASS]
    latencies = [
        float(r["evidence"].get("latency_ms"))
        for r in rows
        if isinstance(r["evidence"], dict) and r["evidence"].get("latency_ms") is not None
    ]
    evidence = {"results": len(rows), "failures": len(failures)}
    if latencies:
        evidence["p95_ms"] = p95(latencies)
    if failures:
        return failed(
            f"{len(failures)} of the last {len(rows)} Scalekit network probes failed.",
            evidence=evidence,
        )
    if latencies and evidence["p95_ms"] > app_settings.NETWORK_P95_MS:
        return failed(
            f"The p95 latency to Scalekit is {evidence['p95_ms']:g} ms, above "
            f"{app_settings.NETWORK_P95_MS} ms.",
            evidence=evidence,
        )
    return passed(
        f"The last {len(rows)} Scalekit probes passed (p95 {evidence.get('p95_ms', 0):g} ms).",
        evidence=evidence,
    )


def _import_runs():  # noqa: ANN202
    model = contract.get_model("migration", "ImportRun")
    if model is None:
        return None
    return model.objects.filter(dry_run=False).exclude(status__in=("pending", "cancelled"))


@probe(
    "readiness.E060", item="M04", title="Import runs verified with zero differences", kind=RECORDS
)
@needs_ledger
def imports_verified(ctx: ProbeContext) -> ProbeResult:
    runs = _import_runs()
    if runs is None:
        return failed("The migration app's ImportRun model is not installed.")
    runs = list(runs.exclude(status="rolled_back").order_by("pk"))
    if not runs:
        return failed("No import run yet: nothing has been imported into Scalekit.")
    problems = []
    for run in runs:
        finished = getattr(run, "finished_at", None)
        verified = getattr(run, "verified_at", None)
        differences = getattr(run, "differences", None)
        if run.status == "running" or finished is None:
            problems.append(f"run {run.pk} is still {run.status}")
        elif verified is None:
            problems.append(f"run {run.pk} was never verified")
        elif verified < finished:
            problems.append(f"run {run.pk} changed after its last verification")
        elif differences:
            problems.append(f"run {run.pk} has {differences} difference(s)")
    evidence = {"runs": [r.pk for r in runs]}
    if problems:
        return failed(
            "; ".join(problems) + ".",
            evidence=evidence,
            hint="Run manage.py migration_verify on each run, fix and verify again.",
        )
    return passed(f"{len(runs)} import run(s) verified with zero differences.", evidence=evidence)


@probe("readiness.W061", item="M05", title="No failed import records left", kind=RECORDS)
@needs_ledger
def no_failed_records(ctx: ProbeContext) -> ProbeResult:
    runs = _import_runs()
    record = contract.get_model("migration", "ImportRecord")
    if runs is None or record is None:
        return failed("The migration app's ImportRun and ImportRecord models are not installed.")
    failed_rows = record.objects.filter(run__in=runs.exclude(status="rolled_back"), status="failed")
    count = failed_rows.count()
    if count:
        runs_with = sorted(set(failed_rows.values_list("run_id", flat=True)))
        return failed(
            f"{count} record(s) failed in import run(s) {', '.join(map(str, runs_with))}.",
            evidence={"failed": count, "runs": runs_with},
            hint="Retry them from the admin or export the failures and fix the source.",
        )
    return passed("No import record is left failed.")
