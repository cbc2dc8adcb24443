"""Undo a run in Scalekit: delete only what this run created.

Users the run created are deleted; on users that already existed (they stay) the roles it added
to their memberships are taken off, the external id it gave one that had none is cleared, and
the memberships it added are removed; then the organizations it created, then the roles it
created (no user holds one by then), then the permissions it created for those roles (kept, and
reported, while a role that stays holds one).
Objects that were already in Scalekit are never touched. Records end ``rolled_back``; a deletion that
fails leaves its record as it was, with the error, so the rollback can be run again.

What counts is what the ledger says the run created, whatever the record's status: a user
created before a later step of its flow failed (a membership, a role) is ``failed`` with outcome
``created`` and its Scalekit id, and is deleted like a succeeded one. Records still in flight
are a worker's unfinished business (it may be creating something right now), so a run with any
is refused: wait for the workers, or ``migration_resume --takeover`` when none is alive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.utils import timezone

from .batches import build_gateway, ledger_lock
from .conf import app_settings
from .gateway import Fatal, Gateway, NotFound, ScalekitCallError
from .models import ImportRecord, ImportRun

Kind = ImportRecord.Kind
Outcome = ImportRecord.Outcome
Status = ImportRecord.Status
CHUNK = 500


class RollbackRefused(Exception):
    """The run cannot be rolled back now; the message says why and what to do."""


@dataclass
class Undone:
    """What undoing one record did (``error``: why it could not, the record is left as it was)."""

    error: str = ""
    memberships_removed: int = 0
    roles_removed: int = 0
    external_ids_cleared: int = 0


@dataclass
class RollbackReport:
    deleted: dict[str, int] = field(default_factory=dict)
    memberships_removed: int = 0
    roles_removed: int = 0
    """Roles taken off memberships that were there before the run (the run had added them)."""
    external_ids_cleared: int = 0
    errors: list[str] = field(default_factory=list)
    kept_permissions: dict[str, str] = field(default_factory=dict)
    """Permission the run created -> the role, not deleted by the rollback, that holds it."""


def to_undo(run: ImportRun, kind: str | None = None) -> QuerySet[ImportRecord]:
    """Records of ``run`` whose Scalekit changes a rollback undoes, whatever their status."""
    records = run.records.exclude(status=Status.ROLLED_BACK).exclude(scalekit_id="")
    if kind is not None:
        records = records.filter(kind=kind)
    return records.filter(
        Q(outcome=Outcome.CREATED)
        | Q(result__has_key="created_memberships")
        | Q(result__has_key="added_roles")
        | Q(result__has_key="previous_external_id")
    )


def check_can_roll_back(run: ImportRun) -> None:
    """Raise ``RollbackRefused`` while the run, or any of its records, is still being worked on."""
    if run.status in (ImportRun.Status.RUNNING, ImportRun.Status.PENDING):
        raise RollbackRefused(f"Run {run.pk} is {run.status}: cancel it first (migration_cancel).")
    with ledger_lock():
        in_flight = run.records.filter(status=Status.IN_FLIGHT).count()
    if in_flight:
        raise RollbackRefused(
            f"Run {run.pk} has {in_flight} record(s) in flight: a worker may still be creating "
            f"them. Wait until it is done (migration_status {run.pk}), or, if no worker of the "
            f"run is alive, finish them first with migration_resume {run.pk} --takeover."
        )


def undo(record: ImportRecord, gateway: Gateway) -> Undone:
    """Undo one record: delete what it created, or restore the user it changed."""
    try:
        if record.outcome == Outcome.CREATED:
            if record.kind == Kind.USER:
                gateway.delete_user(record.scalekit_id)
            elif record.kind == Kind.ORGANIZATION:
                gateway.delete_organization(record.scalekit_id)
            else:
                gateway.delete_role(record.payload["name"])
            return Undone()
        done = Undone()
        restore_user(record, gateway, done)
        if done.error:
            return done
        for organization_id in record.result.get("created_memberships", []):
            with contextlib.suppress(NotFound):
                gateway.delete_membership(organization_id, record.scalekit_id)
            done.memberships_removed += 1
        return done
    except NotFound:
        return Undone()
    except Fatal:
        raise
    except ScalekitCallError as exc:
        return Undone(f"{record.kind} {record.key}: {exc.code}: {exc.message}")


def restore_user(record: ImportRecord, gateway: Gateway, done: Undone) -> None:
    """Take the roles the run added off the memberships that were already there, and clear
    the external id the run gave a user that had none (unless someone changed it since).

    Roles are removed by name from what the membership holds now, so roles given since are
    kept and running it again changes nothing. Scalekit keeps a membership's roles when asked
    for none, so roles that are all a membership holds cannot be taken off: that is reported.
    """
    added: dict[str, list[str]] = record.result.get("added_roles") or {}
    restore_id = "previous_external_id" in record.result
    if not added and not restore_id:
        return
    user = gateway.get_user(record.scalekit_id)
    created = set(record.result.get("created_memberships", []))
    holds = {m.organization_id: [r.name for r in m.roles] for m in user.memberships}
    for organization_id, names in added.items():
        if organization_id in created or organization_id not in holds:
            continue
        current = holds[organization_id]
        remaining = [name for name in current if name not in names]
        if len(remaining) == len(current):
            continue
        if not remaining:
            done.error = (
                f"{record.kind} {record.key}: cannot take roles {', '.join(current)} off its "
                f"membership of {organization_id}: the run added them and they are all it "
                "holds (Scalekit keeps a membership's roles when asked for none); give it "
                "another role, then run the rollback again"
            )
            return
        try:
            gateway.update_membership_roles(organization_id, record.scalekit_id, remaining)
        except NotFound:
            continue
        done.roles_removed += len(current) - len(remaining)
    wanted = record.payload.get("external_id") or ""
    if restore_id and wanted and user.external_id == wanted:
        gateway.set_user_external_id(record.scalekit_id, record.result["previous_external_id"])
        done.external_ids_cleared += 1


def _chunks(run: ImportRun, kind: str) -> Iterator[list[ImportRecord]]:
    last = 0
    while True:
        with ledger_lock():
            chunk = list(to_undo(run, kind).filter(id__gt=last).order_by("id")[:CHUNK])
        if not chunk:
            return
        last = chunk[-1].pk
        yield chunk


def rollback(
    run: ImportRun,
    *,
    concurrency: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RollbackReport:
    """Undo what ``run`` did in Scalekit, ``CHUNK`` records at a time; ``progress(n)`` after each.

    Raises ``RollbackRefused`` (nothing done) while the run or a record of it is in progress,
    and ``Fatal`` when Scalekit refuses the credentials (run it again once fixed: an object
    already deleted answers NOT_FOUND, which counts as undone).
    """
    check_can_roll_back(run)
    gateway = build_gateway(run)
    report = RollbackReport()
    workers = concurrency or int(run.options.get("concurrency") or app_settings.CONCURRENCY)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for kind in (Kind.USER, Kind.ORGANIZATION, Kind.ROLE):
            for chunk in _chunks(run, kind):
                outcomes = list(pool.map(lambda r: undo(r, gateway), chunk))
                for record, done in zip(chunk, outcomes, strict=True):
                    if done.error:
                        report.errors.append(done.error)
                        record.last_error = f"rollback failed: {done.error}"
                        record.error_code = "rollback"
                    else:
                        record.status = Status.ROLLED_BACK
                        report.memberships_removed += done.memberships_removed
                        report.roles_removed += done.roles_removed
                        report.external_ids_cleared += done.external_ids_cleared
                        if record.outcome == Outcome.CREATED:
                            report.deleted[kind] = report.deleted.get(kind, 0) + 1
                with ledger_lock():
                    ImportRecord.objects.bulk_update(
                        chunk, ["status", "last_error", "error_code"], batch_size=CHUNK
                    )
                if progress:
                    progress(len(chunk))
    undo_permissions(run, gateway, report)
    with ledger_lock():
        if not report.errors:
            run.status = ImportRun.Status.ROLLED_BACK
            run.finished_at = run.finished_at or timezone.now()
            run.message = "rolled back"
            run.save(update_fields=["status", "finished_at", "message"])
        run.refresh_counts()
    return report


def undo_permissions(run: ImportRun, gateway: Gateway, report: RollbackReport) -> None:
    """Delete the permissions the run created for its roles, once those roles are gone.

    Deleting a permission takes it off every role, so one still held by a role (one the
    rollback could not delete, or one someone gave it since) is kept and reported instead.
    Listed from every role record, whatever its status: a role that failed after its
    permissions were created still created them.
    """
    with ledger_lock():
        results = run.records.filter(
            kind=Kind.ROLE, result__has_key="created_permissions"
        ).values_list("result", flat=True)
        names = sorted({name for result in results for name in result["created_permissions"]})
    if not names:
        return
    try:
        holders = {
            permission: role.name
            for role in gateway.list_roles()
            for permission in gateway.role_permission_names(role.name)
        }
    except Fatal:
        raise
    except ScalekitCallError as exc:
        report.errors.append(f"permissions: cannot list the roles: {exc.code}: {exc.message}")
        return
    for name in names:
        if name in holders:
            report.kept_permissions[name] = holders[name]
            continue
        try:
            gateway.delete_permission(name)
        except NotFound:
            continue
        except Fatal:
            raise
        except ScalekitCallError as exc:
            report.errors.append(f"permission {name}: {exc.code}: {exc.message}")
            continue
        report.deleted["permission"] = report.deleted.get("permission", 0) + 1
