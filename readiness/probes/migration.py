"""Kind R: probes that read stored records: past network results, the logins ``scalekit_auth``
recorded, and the migration ledger.

The ledger belongs to the ``migration`` app; it is read through ``apps.get_model`` so that this app
keeps working where ``migration`` is not installed: its probes then skip, saying what to do
(``NO_LEDGER``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from django.db import DatabaseError
from django.db.models import Count, Model

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
    skipped,
    warned,
)


@probe(
    "readiness.W063",
    item="B17",
    title="Access token lifetime observed at login",
    kind=RECORDS,
    reads=("READINESS.MAX_ACCESS_TOKEN_LIFETIME",),
)
def access_token_lifetime(ctx: ProbeContext) -> ProbeResult:
    """The access tokens Scalekit actually issued at the latest logins live no longer than the
    limit. The lifetime is set in Scalekit's session policy, so only a real login shows it."""
    model = contract.get_model("scalekit_auth", "ScalekitSession")
    if model is None:
        return failed("scalekit_auth's ScalekitSession model is not installed; run migrate.")
    limit = int(app_settings.MAX_ACCESS_TOKEN_LIFETIME)
    try:
        lifetimes = list(
            model.objects.exclude(access_token_lifetime=None)
            .order_by("-created_at")
            .values_list("access_token_lifetime", flat=True)[:200]
        )
    except DatabaseError:
        return failed("scalekit_auth's tables are missing; run manage.py migrate.")
    if not lifetimes:
        return warned(
            "No login through Scalekit is recorded yet: log in once, then run the checks again."
        )
    longest = max(lifetimes)
    evidence = {"logins": len(lifetimes), "longest_s": longest, "limit_s": limit}
    if longest > limit:
        return failed(
            f"Access tokens issued at recent logins live up to {longest} s; the limit is "
            f"{limit} s.",
            evidence=evidence,
            hint="Shorten the access token lifetime in Scalekit's session policy (H08), or raise "
            "READINESS['MAX_ACCESS_TOKEN_LIFETIME'] if the longer lifetime is intended.",
        )
    return passed(
        f"Access tokens of the last {len(lifetimes)} login(s) live at most {longest} s "
        f"(limit {limit} s).",
        evidence=evidence,
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


#: E060 and W061 without the ``migration`` app: nothing to read, so nothing proves the import. A
#: skip leaves M04 to do (an open blocker), which a person closes by marking its section not
#: applicable with the reason; failing, it could not be (a failing blocker is never hidden).
NO_LEDGER = (
    "The migration app is not installed, so no import run can be read: if the users were "
    "imported another way, mark section 'Phase 2: import' not applicable, saying how they were "
    "imported and verified."
)


def _ledger() -> tuple[type[Model], type[Model]] | None:
    """The ImportRun and ImportRecord models, or None when the migration app is not installed."""
    run_model = contract.get_model("migration", "ImportRun")
    record_model = contract.get_model("migration", "ImportRecord")
    if run_model is None or record_model is None:
        return None
    return run_model, record_model


#: Runs whose import finished; only these can be verified.
COUNTED = ("completed", "completed_with_errors")
#: Runs still sending (or about to).
IN_PROGRESS = ("pending", "running")
#: Runs stopped part-way; resumable, or to be rolled back.
STOPPED = ("failed", "cancelled")
UNFINISHED_RECORDS = ("pending", "in_flight")


def _record_counts(record_model: type[Model], run_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    rows = (
        record_model.objects.filter(run_id__in=run_ids)
        .values("run_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(row["run_id"], {})[row["status"]] = row["n"]
    return counts


@probe(
    "readiness.E060", item="M04", title="Import runs verified with zero differences", kind=RECORDS
)
@needs_ledger
def imports_verified(ctx: ProbeContext) -> ProbeResult:
    """Every import that reached Scalekit finished, was verified afterwards, and differs in nothing.

    Only completed runs can pass. A run still pending or running, or one that failed or was
    cancelled after sending records, is a half-done import and fails the item until it is resumed
    to completion or rolled back. Dry runs and runs that sent nothing are ignored.
    """
    ledger = _ledger()
    if ledger is None:
        return skipped(NO_LEDGER)
    run_model, record_model = ledger
    runs = list(
        run_model.objects.filter(dry_run=False).exclude(status="rolled_back").order_by("pk")
    )
    records = _record_counts(record_model, [r.pk for r in runs])
    problems, warnings, counted = [], [], []
    for run in runs:
        mine = records.get(run.pk, {})
        sent = mine.get("succeeded", 0)
        unfinished = sum(mine.get(s, 0) for s in UNFINISHED_RECORDS)
        if run.status in IN_PROGRESS:
            problems.append(f"run {run.pk} is still {run.status}")
        elif run.status in STOPPED:
            if sent:
                problems.append(
                    f"run {run.pk} {'was ' if run.status == 'cancelled' else ''}{run.status} "
                    f"part-way with {sent} record(s) already in Scalekit: resume it or roll it back"
                )
        elif run.status not in COUNTED:
            problems.append(f"run {run.pk} has the unknown status {run.status!r}")
        else:
            counted.append(run.pk)
            finished, verified = run.finished_at, run.verified_at
            if unfinished:
                problems.append(
                    f"run {run.pk} has {unfinished} record(s) still pending or in flight"
                )
            elif finished is None:
                problems.append(f"run {run.pk} is {run.status} but has no finish time")
            elif verified is None:
                problems.append(f"run {run.pk} was never verified")
            elif verified < finished:
                problems.append(f"run {run.pk} changed after its last verification")
            elif run.differences:
                problems.append(f"run {run.pk} has {run.differences} difference(s)")
            not_sent = mine.get("failed", 0) + mine.get("invalid", 0)
            if run.status == "completed_with_errors" and not_sent:
                warnings.append(
                    f"run {run.pk} completed with {not_sent} failed or invalid record(s) that "
                    "are not in Scalekit (see M05)"
                )
    evidence = {"runs": [r.pk for r in runs], "counted": counted}
    if problems:
        return failed(
            "; ".join(problems) + ".",
            evidence=evidence,
            hint="Let running imports finish, resume or roll back stopped ones, then run "
            "manage.py migration_verify on each completed run.",
        )
    if not counted:
        return failed(
            "No completed import run yet: nothing has been imported into Scalekit.",
            evidence=evidence,
        )
    if warnings:
        return warned("; ".join(warnings) + ".", evidence=evidence)
    return passed(
        f"{len(counted)} completed import run(s) verified with zero differences.",
        evidence=evidence,
    )


@probe("readiness.W061", item="M05", title="No failed import records left", kind=RECORDS)
@needs_ledger
def no_failed_records(ctx: ProbeContext) -> ProbeResult:
    ledger = _ledger()
    if ledger is None:
        return skipped(NO_LEDGER)
    run_model, record_model = ledger
    runs = run_model.objects.filter(dry_run=False).exclude(status="rolled_back")
    failed_rows = record_model.objects.filter(run__in=runs, status="failed")
    count = failed_rows.count()
    if count:
        runs_with = sorted(set(failed_rows.values_list("run_id", flat=True)))
        return failed(
            f"{count} record(s) failed in import run(s) {', '.join(map(str, runs_with))}.",
            evidence={"failed": count, "runs": runs_with},
            hint="Retry them from the admin or export the failures and fix the source.",
        )
    return passed("No import record is left failed.")
