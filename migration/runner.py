"""Running an import: roles, then organizations, then users, in-process or on Celery.

The phases are strictly ordered: users are only sent once no organization of the run is pending
or in flight. In-process, the phases run one after the other on a thread pool; on Celery, the
batch task that finds its phase finished advances the run (a compare-and-set on ``phase``, so
exactly one does) and queues the next phase's batches.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone
from scalekit.common.exceptions import ScalekitException

from scalekit_auth.client import describe_client_error

from .batches import (
    BatchResult,
    LeaseKeeper,
    backoff_delay,
    build_gateway,
    claim_batch,
    ledger_lock,
    run_stopped,
    save_batch,
    send_batch,
)
from .conf import app_settings
from .gateway import Fatal, ScalekitCallError, Transient
from .models import ImportRecord, ImportRun

logger = logging.getLogger(__name__)

Kind = ImportRecord.Kind
Status = ImportRecord.Status
Phase = ImportRun.Phase
PHASES = [
    (Phase.ROLES, Kind.ROLE),
    (Phase.ORGANIZATIONS, Kind.ORGANIZATION),
    (Phase.USERS, Kind.USER),
]
NEXT_PHASE = {
    Phase.ROLES: Phase.ORGANIZATIONS,
    Phase.ORGANIZATIONS: Phase.USERS,
    Phase.USERS: Phase.DONE,
}
KIND_OF = dict(PHASES)


class RunStopped(Exception):
    """The run cannot go on (missing roles, rejected credentials); ``run.message`` says why."""


class NotResumable(Exception):
    """The run cannot be started, resumed or retried; the message says why and what to do."""


class AlreadyVerifying(Exception):
    """A verify of the run is under way; the message says since when and how far it got."""


def ingest_complete(run: ImportRun) -> bool:
    """Whether the whole source is in the ledger.

    Ingest leaves ``phase=ingest`` only once every row is written (it then writes the checksum
    and moves to ``roles`` in one save); a run that failed or crashed while reading its source
    stays in ``ingest``. Runs ingested before that rule kept ``ingest`` with a checksum, which
    was always written last.
    """
    return run.phase != Phase.INGEST or bool(run.checksum)


def ensure_ingested(run: ImportRun) -> None:
    """Refuse a run whose source was not fully read: sending it would import part of the
    source and report success."""
    if ingest_complete(run):
        return
    why = f"reading it failed: {run.message}" if run.message else "reading it has not completed"
    raise NotResumable(
        f"Run {run.pk} never had its whole source in the ledger ({why}); it cannot be "
        "resumed, retried or started: import the source again (a new run)."
    )


def live_in_flight(run: ImportRun) -> int:
    """In-flight records of ``run`` whose lease is live: a process is sending them right now
    (a cancelled one finishing its batches, say). A dead worker's leases expire after
    ``LEASE_SECONDS``; a resume takes those records over."""
    stale = timezone.now() - timedelta(seconds=float(app_settings.LEASE_SECONDS))
    with ledger_lock():
        return run.records.filter(status=Status.IN_FLIGHT, claimed_at__gte=stale).count()


def ensure_resumable(run: ImportRun) -> None:
    """Refuse a run that can never be continued: a dry run, a rolled-back run, a run whose
    source was not fully read."""
    if run.dry_run:
        raise NotResumable(f"Run {run.pk} is a dry run: import the source again without --dry-run.")
    if run.status == ImportRun.Status.ROLLED_BACK:
        raise NotResumable(f"Run {run.pk} was rolled back: import the source again.")
    ensure_ingested(run)


def ensure_can_continue(run: ImportRun) -> None:
    """Refuse to send a run's records again (the admin's retry and resume, and
    ``migration_resume`` without ``--takeover``) when ``ensure_resumable`` refuses it, while it
    is running, and while any of its records is in flight with a live lease: a second executor
    would send beside the first, at twice the rate limit."""
    ensure_resumable(run)
    if run.status == ImportRun.Status.RUNNING:
        raise NotResumable(
            f"Run {run.pk} is running (mode: {run.options.get('mode', 'unknown')}): a live "
            f"process may still be sending its records. Cancel it (migration_cancel {run.pk}), "
            "and continue it once it has stopped; if no process of this run is alive any more "
            f"(it was killed), continue it with manage.py migration_resume {run.pk} --takeover."
        )
    live = live_in_flight(run)
    if live:
        raise NotResumable(
            f"Run {run.pk} has {live} record(s) in flight: a process (the one cancelled, say) "
            "is still sending them. Try again once they are written back "
            f"(migration_status {run.pk}); if that process died, their leases expire "
            f"{app_settings.LEASE_SECONDS} s after it last renewed them."
        )


@dataclass
class RolesPlan:
    existing: set[str] = field(default_factory=set)
    referenced: set[str] = field(default_factory=set)
    to_create: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    undefined: set[str] = field(default_factory=set)
    invalidated_users: int = 0


def batch_size(run: ImportRun) -> int:
    return int(run.options.get("batch_size") or app_settings.BATCH_SIZE)


def concurrency(run: ImportRun) -> int:
    return int(run.options.get("concurrency") or app_settings.CONCURRENCY)


def work_ranges(run: ImportRun, kind: str) -> list[tuple[int, int]]:
    """Id ranges of records of ``kind`` that still need sending.

    Batches hold ``batch_size`` records, or fewer when that leaves some of the ``concurrency``
    workers without a batch (a small import is spread over every worker too).
    """
    ranges: list[tuple[int, int]] = []
    with ledger_lock():
        ids = (
            run.records.filter(kind=kind, status__in=[Status.PENDING, Status.IN_FLIGHT])
            .order_by("id")
            .values_list("id", flat=True)
        )
        total = ids.count()
        size = max(1, min(batch_size(run), math.ceil(total / concurrency(run))))
        chunk: list[int] = []
        for pk in ids.iterator(chunk_size=2000):
            chunk.append(pk)
            if len(chunk) == size:
                ranges.append((chunk[0], chunk[-1]))
                chunk = []
        if chunk:
            ranges.append((chunk[0], chunk[-1]))
    return ranges


# roles --------------------------------------------------------------------------------------
def with_retries(call: Callable[[], Any]) -> Any:
    """``call()``, retried on transient errors like a record's send (MAX_ATTEMPTS, backoff)."""
    attempts = int(app_settings.MAX_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Transient:
            if attempt == attempts:
                raise
            time.sleep(backoff_delay(attempt))
    raise AssertionError("unreachable")


def plan_roles(run: ImportRun, *, dry_run: bool = False) -> RolesPlan:
    """Compare the roles the memberships name with Scalekit's; stop or mark rows as needed.

    Roles named but missing in Scalekit are created from the source's role definitions; with
    ``require_roles`` the run stops with their list instead. A role neither in Scalekit nor
    defined in the source makes the users naming it invalid (Scalekit would silently ignore it);
    a dry run marks them invalid too (in its own ledger), so its summary and exit code say what
    the real run will.
    """
    gateway = build_gateway(run)
    plan = RolesPlan()
    plan.existing = {role.name for role in with_retries(gateway.list_roles)}
    plan.referenced = set(run.options.get("referenced_roles", []))
    with ledger_lock():
        defined = set(
            run.records.filter(kind=Kind.ROLE)
            .exclude(status=Status.INVALID)
            .values_list("key", flat=True)
        )
    plan.missing = plan.referenced - plan.existing
    plan.to_create = defined - plan.existing
    plan.undefined = plan.missing - defined
    if dry_run:
        if plan.undefined:
            with ledger_lock():
                plan.invalidated_users = invalidate_users_with_roles(run, plan.undefined)
        return plan
    if run.options.get("require_roles") and plan.missing:
        stop(run, "roles missing in Scalekit (--require-roles): " + ", ".join(sorted(plan.missing)))
        raise RunStopped(run.message)
    run.options = {**run.options, "existing_roles": sorted(plan.existing)}
    with ledger_lock():
        ImportRun.objects.filter(pk=run.pk).update(options=run.options)
        if plan.undefined:
            plan.invalidated_users = invalidate_users_with_roles(run, plan.undefined)
    return plan


def invalidate_users_with_roles(run: ImportRun, roles: set[str]) -> int:
    changed: list[ImportRecord] = []
    pending = run.records.filter(kind=Kind.USER, status=Status.PENDING).only("id", "payload")
    for record in pending.iterator(chunk_size=2000):
        named = [r for m in record.payload.get("memberships", []) for r in m["roles"] if r in roles]
        if named:
            record.status = Status.INVALID
            record.error_code = "unknown_role"
            record.last_error = (
                f"memberships: unknown role {named[0]!r} (not in Scalekit and not defined in the "
                "roles source)"
            )
            changed.append(record)
    ImportRecord.objects.bulk_update(
        changed, ["status", "error_code", "last_error"], batch_size=500
    )
    return len(changed)


# state changes ------------------------------------------------------------------------------
def start(run: ImportRun, mode: str) -> None:
    """Mark the run running; ``mode`` ("celery" or "inprocess") says who sends its batches.

    Raises ``NotResumable`` for a run whose source was not fully read."""
    ensure_ingested(run)
    now = timezone.now()
    run.status = ImportRun.Status.RUNNING
    run.started_at = run.started_at or now
    run.resumed_at = now
    run.finished_at = None
    run.message = ""
    run.options = {**run.options, "mode": mode}
    with ledger_lock():
        run.done_at_resume = run.records.filter(
            status__in=[Status.SUCCEEDED, Status.FAILED]
        ).count()
        run.save(
            update_fields=[
                "status",
                "started_at",
                "resumed_at",
                "done_at_resume",
                "finished_at",
                "message",
                "options",
            ]
        )


def stop(run: ImportRun, message: str, status: str = ImportRun.Status.FAILED) -> None:
    run.status = status
    run.message = message
    run.finished_at = timezone.now()
    with ledger_lock():
        run.save(update_fields=["status", "message", "finished_at"])
        run.refresh_counts()


def finalize(run: ImportRun) -> ImportRun:
    with ledger_lock():
        run.refresh_from_db()
        if run.status != ImportRun.Status.RUNNING:
            return run
        unfinished = run.records.filter(status__in=[Status.PENDING, Status.IN_FLIGHT]).exists()
        if unfinished:
            return run
        run.finished_at = timezone.now()
        run.phase = Phase.DONE
        run.refresh_counts(save=False)
        problems = run.count("failed") + run.count("invalid")
        run.status = (
            ImportRun.Status.COMPLETED_WITH_ERRORS if problems else ImportRun.Status.COMPLETED
        )
        run.save(update_fields=["finished_at", "phase", "status", "counts", "throughput"])
    return run


def cancel(run: ImportRun) -> bool:
    """Stop a run: workers finish the record in hand and put the rest back (resumable)."""
    with ledger_lock():
        changed = ImportRun.objects.filter(
            pk=run.pk, status__in=[ImportRun.Status.PENDING, ImportRun.Status.RUNNING]
        ).update(status=ImportRun.Status.CANCELLED, finished_at=timezone.now(), message="cancelled")
    run.refresh_from_db()
    return bool(changed)


def prepare_resume(
    run: ImportRun, *, takeover: bool = False, retry_failed: bool = False
) -> dict[str, int]:
    """Put back what a resume should send: failed-transient records (all failed ones with
    ``retry_failed``), and with ``takeover`` every in-flight record (the operator says no worker
    is alive; without it, only those whose lease expired are taken over).

    Raises ``NotResumable`` (and changes nothing) for a run whose source was not fully read."""
    ensure_ingested(run)
    with ledger_lock():
        failed = run.records.filter(status=Status.FAILED)
        if not retry_failed:
            failed = failed.filter(retryable=True)
        requeued = failed.update(status=Status.PENDING, recheck=True, claimed_by="")
        taken = 0
        if takeover:
            taken = run.records.filter(status=Status.IN_FLIGHT).update(
                status=Status.PENDING, recheck=True, claimed_by=""
            )
        ImportRun.objects.filter(pk=run.pk).update(phase=Phase.ROLES)
        run.refresh_from_db()
        run.refresh_counts()
    return {"requeued_failed": requeued, "taken_over": taken}


def retry_records(run: ImportRun, record_ids: list[int]) -> int:
    """Put back exactly these failed records of ``run`` (re-checked before sending); returns
    how many. Nothing else of the run changes state; continue it with ``launch``.

    Raises ``NotResumable`` (and changes nothing) for a run whose source was not fully read."""
    ensure_ingested(run)
    with ledger_lock():
        requeued = run.records.filter(pk__in=record_ids, status=Status.FAILED).update(
            status=Status.PENDING, recheck=True, claimed_by=""
        )
        ImportRun.objects.filter(pk=run.pk).update(phase=Phase.ROLES)
        run.refresh_from_db()
        run.refresh_counts()
    return requeued


# in-process ---------------------------------------------------------------------------------
ProgressCallback = Callable[[BatchResult], None]


def execute(run: ImportRun, *, progress: ProgressCallback | None = None) -> ImportRun:
    """Run every phase in this process on a thread pool; returns the finished (or stopped) run."""
    start(run, "inprocess")
    try:
        for phase, kind in PHASES:
            run.phase = phase
            with ledger_lock():
                ImportRun.objects.filter(pk=run.pk).update(phase=phase)
            if phase == Phase.ROLES:
                plan_roles(run)
            run_phase_inprocess(run, kind, progress)
            with ledger_lock():
                run.refresh_from_db()
                run.refresh_counts()
            if run.status != ImportRun.Status.RUNNING:
                return run
    except RunStopped:
        return run
    except Fatal as exc:
        stop(run, f"Scalekit refused the credentials: {exc.message}")
        return run
    except ScalekitCallError as exc:
        stop(run, f"Scalekit could not be reached: {exc.message}")
        return run
    except (ImproperlyConfigured, ScalekitException) as exc:
        stop(run, client_error(exc))
        return run
    return finalize(run)


def client_error(exc: Exception) -> str:
    """Why the SDK client could not be built (a TLS verification failure named as such),
    without anything the exception may carry: ``scalekit_auth.client.describe_client_error``."""
    return describe_client_error(exc)


INPROCESS_COUNTS_EVERY_SECONDS = 1.0
#: Floor of the in-process lease check interval (a test's tiny LEASE_SECONDS must not spin).
LEASE_CHECK_MIN_SECONDS = 0.05


def run_phase_inprocess(run: ImportRun, kind: str, progress: ProgressCallback | None) -> None:
    """Send a phase's batches on a pool of sender threads; this thread does all database work.

    Keeping claims and writes on one thread means one database connection (SQLite's single
    writer never waits on a sender) while up to ``concurrency`` batches are on the network.
    This thread also renews the lease of every batch on the network (one UPDATE once a third of
    ``LEASE_SECONDS`` has gone by), however long a sender waits (a rate-limit pause can outlast
    the lease): only the records of a process that died ever have an expired lease.
    """
    ranges = work_ranges(run, kind)
    if not ranges:
        return
    workers = 1 if kind == Kind.ROLE else max(1, min(concurrency(run), len(ranges)))
    stop = threading.Event()
    todo = iter(ranges)
    inflight: dict[Future, str] = {}
    keeper = LeaseKeeper(lambda: list(inflight.values()))
    renew_every = max(float(app_settings.LEASE_SECONDS) / 6, LEASE_CHECK_MIN_SECONDS)

    def submit_next(pool: ThreadPoolExecutor) -> None:
        for lo, hi in todo:
            batch = claim_batch(run.pk, kind, lo, hi)
            if batch.stopped:
                stop.set()
                return
            if batch.records:
                inflight[pool.submit(send_batch, batch, stop.is_set)] = batch.token
                return

    counted_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migration") as pool:
        for _ in range(workers):
            submit_next(pool)
        while inflight:
            finished, _ = wait(list(inflight), timeout=renew_every, return_when=FIRST_COMPLETED)
            for future in finished:
                del inflight[future]
                result = save_batch(future.result())
                if time.monotonic() - counted_at >= INPROCESS_COUNTS_EVERY_SECONDS:
                    counted_at = time.monotonic()
                    with ledger_lock():
                        run.refresh_counts()  # the admin's counts, rate and ETA move
                if progress:
                    progress(result)
                if result.stopped or run_stopped(run.pk):
                    stop.set()
                elif not stop.is_set():
                    submit_next(pool)
            keeper()


# Celery -------------------------------------------------------------------------------------
def dispatch(run: ImportRun) -> None:
    """Hand the run to Celery (``--async``): a worker plans the roles and queues the batches."""
    from .tasks import start_run

    start(run, "celery")
    start_run.delay(run.pk)


def begin_async(run_id: int) -> None:
    """Body of the ``start_run`` task: plan roles, then queue the first phase with work."""
    run = ImportRun.objects.get(pk=run_id)
    if run.status != ImportRun.Status.RUNNING:
        return
    ImportRun.objects.filter(pk=run.pk).update(phase=Phase.ROLES)
    try:
        plan_roles(run)
    except RunStopped:
        return
    except Fatal as exc:
        stop(run, f"Scalekit refused the credentials: {exc.message}")
        return
    except ScalekitCallError as exc:
        stop(run, f"Scalekit could not be reached: {exc.message}")
        return
    except (ImproperlyConfigured, ScalekitException) as exc:
        stop(run, client_error(exc))
        return
    queue_phase(run, Phase.ROLES)


def queue_phase(run: ImportRun, phase: str) -> None:
    """Queue the batches of ``phase``, or move on at once when it has nothing to send."""
    from .tasks import process_batch

    while phase != Phase.DONE:
        ranges = work_ranges(run, KIND_OF[phase])
        if ranges:
            for lo, hi in ranges:
                process_batch.delay(run.pk, KIND_OF[phase], lo, hi)
            return
        following = NEXT_PHASE[phase]
        if not ImportRun.objects.filter(pk=run.pk, phase=phase).update(phase=following):
            return
        phase = following
    finalize(run)


def requeue_expired() -> dict[int, int]:
    """Queue again the work of Celery runs that a dead worker left behind.

    A worker killed outright (SIGKILL, a lost machine) leaves its records ``in_flight`` and its
    messages unacknowledged; the broker only redelivers those after its visibility timeout
    (and Redis scans for them only every few minutes). For each running Celery run:

    * every in-flight record whose lease expired goes back to ``pending`` (marked ``recheck``:
      it is looked up in Scalekit before being sent again) and batches over exactly those
      records are queued;
    * a run that is *stalled* (records of its current phase still to send, but none claimed or
      written for ``LEASE_SECONDS``, nor requeued by this task) has its phase queued again:
      that covers a batch the dead worker had fetched but not yet claimed.

    Idempotent: a second call finds no expired lease, a requeued run is not stalled again for
    ``LEASE_SECONDS``, and a batch whose records were taken meanwhile claims nothing. Runs sent
    in-process are left alone (``migration_resume`` continues them). Returns
    ``{run id: records requeued}`` (for a stalled run, the records of the queued ranges).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=float(app_settings.LEASE_SECONDS))
    requeued: dict[int, int] = {}
    for run in ImportRun.objects.filter(status=ImportRun.Status.RUNNING):
        if run.options.get("mode") == "inprocess":
            continue
        count = _requeue_expired_leases(run, stale) or _requeue_stalled_phase(run, stale)
        if count:
            requeued[run.pk] = count
            options = {**run.options, "requeued_at": now.isoformat()}
            ImportRun.objects.filter(pk=run.pk).update(options=options)
    return requeued


def _requeue_expired_leases(run: ImportRun, stale: Any) -> int:
    from .tasks import process_batch

    expired = run.records.filter(status=Status.IN_FLIGHT, claimed_at__lt=stale)
    total = 0
    for kind in (Kind.ROLE, Kind.ORGANIZATION, Kind.USER):
        ids = list(expired.filter(kind=kind).order_by("id").values_list("id", flat=True))
        if not ids:
            continue
        # The same filter again: a record re-claimed since the read keeps its new lease.
        expired.filter(pk__in=ids).update(status=Status.PENDING, recheck=True, claimed_by="")
        size = batch_size(run)
        for start_at in range(0, len(ids), size):
            chunk = ids[start_at : start_at + size]
            process_batch.delay(run.pk, kind, chunk[0], chunk[-1])
        total += len(ids)
        logger.warning(
            "migration: run %s: %d %s record(s) of a dead worker requeued", run.pk, len(ids), kind
        )
    return total


def _requeue_stalled_phase(run: ImportRun, stale: Any) -> int:
    from .tasks import process_batch

    kind = KIND_OF.get(run.phase)
    requeued_at = run.options.get("requeued_at")
    if kind is None or (requeued_at and datetime.fromisoformat(requeued_at) >= stale):
        return 0
    if run.phase == Phase.ROLES and "existing_roles" not in run.options:
        return 0  # roles never planned (start_run lost): migration_resume --takeover plans them
    if (run.resumed_at or run.started_at or stale) >= stale:
        return 0  # just (re)started: its batches may not have reached a worker yet
    if run.records.filter(Q(claimed_at__gte=stale) | Q(updated_at__gte=stale)).exists():
        return 0  # something is progressing
    ranges = work_ranges(run, kind)
    if not ranges:
        # Nothing left in the phase, yet it never moved on: the worker that finished its last
        # batch died before advancing the run. Advance it now (a compare-and-set, as always).
        logger.warning("migration: run %s stalled after phase %s: advancing it", run.pk, run.phase)
        advance(run.pk, kind)
        return 0
    for lo, hi in ranges:
        process_batch.delay(run.pk, kind, lo, hi)
    logger.warning(
        "migration: run %s stalled in phase %s: %d batch(es) queued again",
        run.pk,
        run.phase,
        len(ranges),
    )
    return run.records.filter(kind=kind, status__in=[Status.PENDING, Status.IN_FLIGHT]).count()


COUNTS_EVERY_SECONDS = 2.0
_counted_at = 0.0


def advance(run_id: int, kind: str) -> None:
    """After a batch: if its phase has nothing pending or in flight, exactly one caller moves on."""
    global _counted_at
    run = ImportRun.objects.get(pk=run_id)
    if time.monotonic() - _counted_at > COUNTS_EVERY_SECONDS:
        _counted_at = time.monotonic()
        run.refresh_counts()  # for the admin; an aggregate over the run, so not every batch
    if run.status != ImportRun.Status.RUNNING:
        return
    phase = {k: p for p, k in PHASES}[kind]
    if run.records.filter(kind=kind, status__in=[Status.PENDING, Status.IN_FLIGHT]).exists():
        return
    following = NEXT_PHASE[phase]
    if ImportRun.objects.filter(pk=run_id, phase=phase).update(phase=following) != 1:
        return
    queue_phase(run, following)


def summary(run: ImportRun, *, save: bool = True) -> dict[str, Any]:
    """The run as a dict for tables and ``--json`` (counts recomputed; stored when ``save``)."""
    run.refresh_counts(save=save)
    kinds = {}
    for kind in (Kind.ROLE, Kind.ORGANIZATION, Kind.USER):
        counts = run.counts.get(kind, {})
        # created / existing / updated split the succeeded records (see refresh_counts).
        kinds[kind] = {
            "rows": sum(n for key, n in counts.items() if not key.startswith("outcome_")),
            "succeeded": counts.get("succeeded", 0),
            "created": counts.get("outcome_created", 0),
            "existing": counts.get("outcome_existing", 0),
            "updated": counts.get("outcome_updated", 0),
            "failed": counts.get("failed", 0),
            "invalid": counts.get("invalid", 0),
            "pending": counts.get("pending", 0) + counts.get("in_flight", 0),
            "rolled_back": counts.get("rolled_back", 0),
        }
    return {
        "run": run.pk,
        "source": run.source,
        "checksum": run.checksum,
        "status": run.status,
        "phase": run.phase,
        "dry_run": run.dry_run,
        "message": run.message,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "resumed_at": run.resumed_at.isoformat() if run.resumed_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "throughput_per_s": run.throughput,
        "estimating": run.estimating,
        "progress": round(run.progress, 4),
        "eta_seconds": run.eta.total_seconds() if run.eta else None,
        "verified_at": run.verified_at.isoformat() if run.verified_at else None,
        "differences": run.differences,
        "kinds": kinds,
    }


def broker_configured() -> bool:
    """Whether batches go to Celery: the Celery app they are published to has a real broker
    and ``MIGRATION['BROKER_URL']`` is not "" (see ``app_settings.no_broker_reason``)."""
    return app_settings.broker_configured()


def launch(run: ImportRun) -> str:
    """Start (or continue) a run without blocking: on Celery, else on a background thread.

    Used by the admin. The thread dies with the web process; ``migration_resume`` continues.
    Raises ``NotResumable`` for a run whose source was not fully read.
    """
    ensure_ingested(run)
    if broker_configured():
        dispatch(run)
        return "queued on Celery"
    start(run, "inprocess")  # running from now on, not from when the thread gets going

    def target() -> None:
        try:
            execute(ImportRun.objects.get(pk=run.pk))
        finally:
            if connection.vendor != "sqlite":
                connection.close()

    threading.Thread(target=target, name=f"migration-run-{run.pk}", daemon=True).start()
    return "started in this process"


def launch_verify(run: ImportRun) -> str:
    """Verify a run without blocking: on Celery, else on a background thread (the admin).

    The run records that a verify is under way (``verifying_since``, a sign of life every
    third of ``LEASE_SECONDS``, the records checked so far); raises ``AlreadyVerifying``
    while one is. The thread's failure is logged and written on the run's message, since
    nobody waits on it.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=float(app_settings.LEASE_SECONDS))
    with ledger_lock():
        started = (
            ImportRun.objects.filter(pk=run.pk)
            .filter(Q(verifying_since__isnull=True) | Q(verify_seen_at__lt=stale))
            .update(verifying_since=now, verify_seen_at=now, verify_checked=0)
        )
        run.refresh_from_db()
    if not started:
        raise AlreadyVerifying(
            f"Run {run.pk} is being verified since "
            f"{timezone.localtime(run.verifying_since):%Y-%m-%d %H:%M:%S} "
            f"({run.verify_checked} record(s) checked so far): wait until it is done."
        )
    try:
        if broker_configured():
            from .tasks import verify_run

            verify_run.delay(run.pk)
            return "queued on Celery"

        def target() -> None:
            try:
                verify_or_record_failure(run.pk)
            finally:
                if connection.vendor != "sqlite":
                    connection.close()

        threading.Thread(target=target, name=f"migration-verify-{run.pk}", daemon=True).start()
    except BaseException:
        _verify_ended(run.pk)
        raise
    return "started in this process"


VERIFY_FAILED = "verify failed: "


def _verify_ended(run_id: int) -> None:
    with ledger_lock():
        ImportRun.objects.filter(pk=run_id).update(verifying_since=None, verify_seen_at=None)


class _VerifyHeartbeat:
    """While a verify runs: its sign of life on the run, from a thread of its own (a rate
    limit can hold every record of a chunk for minutes), and the records checked so far."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._beat, name=f"migration-verify-heartbeat-{run_id}", daemon=True
        )

    def __enter__(self) -> _VerifyHeartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        every = float(app_settings.LEASE_SECONDS) / 3
        try:
            while not self.stopped.wait(every):
                with ledger_lock():
                    ImportRun.objects.filter(pk=self.run_id, verifying_since__isnull=False).update(
                        verify_seen_at=timezone.now()
                    )
        finally:
            if connection.vendor != "sqlite":
                connection.close()

    def checked(self, count: int) -> None:
        with ledger_lock():
            ImportRun.objects.filter(pk=self.run_id).update(
                verify_checked=F("verify_checked") + count, verify_seen_at=timezone.now()
            )


def verify_or_record_failure(run_id: int) -> None:
    """``verify`` the run; if it raises, log the traceback and say why on ``run.message``
    (Scalekit's answer for the expected failures, only the exception type otherwise).
    Whatever happens, the run no longer shows a verify under way afterwards."""
    from .verify import verify

    try:
        with _VerifyHeartbeat(run_id) as heartbeat:
            verify(ImportRun.objects.get(pk=run_id), progress=heartbeat.checked)
    except Exception as exc:  # noqa: BLE001 - a background thread: nobody else would see it
        logger.exception("migration: verify of run %s failed", run_id)
        if isinstance(exc, Fatal):
            why = f"Scalekit refused the credentials: {exc.message}"
        elif isinstance(exc, ScalekitCallError):
            why = f"Scalekit could not be reached: {exc.message}"
        elif isinstance(exc, ImproperlyConfigured | ScalekitException):
            why = client_error(exc)
        else:
            why = f"unexpected error ({type(exc).__name__}); see the server log"
        with ledger_lock():
            ImportRun.objects.filter(pk=run_id).update(message=f"{VERIFY_FAILED}{why}")
    else:
        with ledger_lock():
            ImportRun.objects.filter(pk=run_id, message__startswith=VERIFY_FAILED).update(
                message=""
            )
    finally:
        _verify_ended(run_id)
