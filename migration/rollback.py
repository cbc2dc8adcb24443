"""Undo a run in Scalekit: delete only what this run created.

Users the run created are deleted; memberships it added to users that already existed are
removed (the users stay); then the organizations it created, then the roles it created. Objects
that were already in Scalekit are never touched. Records end ``rolled_back``; a deletion that
fails leaves its record as it was, with the error, so the rollback can be run again.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.utils import timezone

from .batches import build_gateway, ledger_lock
from .gateway import Gateway, NotFound, ScalekitCallError
from .models import ImportRecord, ImportRun

Kind = ImportRecord.Kind
Outcome = ImportRecord.Outcome
Status = ImportRecord.Status


@dataclass
class RollbackReport:
    deleted: dict[str, int] = field(default_factory=dict)
    memberships_removed: int = 0
    errors: list[str] = field(default_factory=list)


def undo(record: ImportRecord, gateway: Gateway) -> tuple[str, int]:
    """Undo one record; returns (error or "", memberships removed)."""
    try:
        if record.outcome == Outcome.CREATED:
            if record.kind == Kind.USER:
                gateway.delete_user(record.scalekit_id)
            elif record.kind == Kind.ORGANIZATION:
                gateway.delete_organization(record.scalekit_id)
            else:
                gateway.delete_role(record.payload["name"])
            return "", 0
        removed = 0
        for organization_id in record.result.get("created_memberships", []):
            with contextlib.suppress(NotFound):
                gateway.delete_membership(organization_id, record.scalekit_id)
            removed += 1
        return "", removed
    except NotFound:
        return "", 0
    except ScalekitCallError as exc:
        return f"{record.kind} {record.key}: {exc.code}: {exc.message}", 0


def rollback(run: ImportRun, *, concurrency: int = 8) -> RollbackReport:
    gateway = build_gateway(run)
    report = RollbackReport()
    for kind in (Kind.USER, Kind.ORGANIZATION, Kind.ROLE):
        with ledger_lock():
            records = list(
                run.records.filter(kind=kind, status=Status.SUCCEEDED).exclude(scalekit_id="")
            )
        touched = [
            r
            for r in records
            if r.outcome == Outcome.CREATED or r.result.get("created_memberships")
        ]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            outcomes = list(pool.map(lambda r: undo(r, gateway), touched))
        done = []
        for record, (error, removed) in zip(touched, outcomes, strict=True):
            if error:
                report.errors.append(error)
                record.last_error = f"rollback failed: {error}"
                record.error_code = "rollback"
            else:
                record.status = Status.ROLLED_BACK
                report.memberships_removed += removed
                if record.outcome == Outcome.CREATED:
                    report.deleted[kind] = report.deleted.get(kind, 0) + 1
            done.append(record)
        with ledger_lock():
            ImportRecord.objects.bulk_update(
                done, ["status", "last_error", "error_code"], batch_size=500
            )
    with ledger_lock():
        if not report.errors:
            run.status = ImportRun.Status.ROLLED_BACK
            run.finished_at = run.finished_at or timezone.now()
            run.message = "rolled back"
            run.save(update_fields=["status", "finished_at", "message"])
        run.refresh_counts()
    return report
