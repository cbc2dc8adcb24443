"""One batch: claim records, send them, write the outcome back. Shared by threads and Celery.

Claiming is one ``UPDATE ... WHERE status = 'pending'`` (or an abandoned ``in_flight``), so two
workers never hold the same record. The records are then sent one after the other (no database
access while sending) and written back with one ``bulk_update`` limited to the rows this claim
still holds. A record taken over from a dead worker is marked ``recheck``: its flow looks it up
in Scalekit before sending it again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from scalekit_auth.client import get_client

from .conf import app_settings
from .flows import FLOWS
from .flows.context import FlowContext, OrganizationRef, RoleRef
from .gateway import (
    CallStats,
    Fatal,
    Gateway,
    Permanent,
    ScalekitCallError,
    Transient,
    UserEmailIndex,
)
from .models import ImportRecord, ImportRun
from .ratelimit import get_rate_limiter

logger = logging.getLogger(__name__)

Status = ImportRecord.Status
SAVED_FIELDS = [
    "status",
    "outcome",
    "scalekit_id",
    "attempts",
    "error_code",
    "last_error",
    "retryable",
    "recheck",
    "result",
    "claimed_by",
    "claimed_at",
    "updated_at",
]
CANCEL_CHECK_EVERY = 25
SAVE_CHUNK = 400

_sqlite_lock = threading.RLock()


@contextmanager
def ledger_lock():
    """Serialise ledger access between this process's threads when the database is SQLite.

    SQLite allows one writer, and its shared-cache in-memory databases (the test database)
    answer a concurrent access with "table is locked" instead of waiting. PostgreSQL needs none.
    """
    with _sqlite_lock if connection.vendor == "sqlite" else nullcontext():
        yield


@dataclass
class BatchResult:
    kind: str
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    released: int = 0
    stopped: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)


def run_options(run: ImportRun) -> dict[str, Any]:
    """The run's options over the app settings: what a batch needs to know."""
    options = run.options
    return {
        "rate": float(options.get("rate") or app_settings.RATE_LIMIT),
        "burst": options.get("burst") or app_settings.RATE_BURST,
        "max_attempts": int(options.get("max_attempts") or app_settings.MAX_ATTEMPTS),
        "send_invitation_email": bool(
            options.get("send_invitation_email", app_settings.SEND_INVITATION_EMAIL)
        ),
        "invite_unverified": bool(
            options.get("invite_unverified", app_settings.INVITE_UNVERIFIED_EMAILS)
        ),
    }


_stats = CallStats()


def process_stats() -> CallStats:
    """Counters of every call this process made to Scalekit (for summaries and benchmarks)."""
    return _stats


_email_indexes: OrderedDict[int, UserEmailIndex] = OrderedDict()
_email_indexes_lock = threading.Lock()
EMAIL_INDEXES_KEPT = 2


def email_index(run_id: int) -> UserEmailIndex:
    """This process's index of Scalekit users by email for ``run_id`` (the last few runs kept)."""
    with _email_indexes_lock:
        index = _email_indexes.pop(run_id, None) or UserEmailIndex()
        _email_indexes[run_id] = index
        while len(_email_indexes) > EMAIL_INDEXES_KEPT:
            _email_indexes.popitem(last=False)
        return index


def build_gateway(run: ImportRun) -> Gateway:
    options = run_options(run)
    limiter = get_rate_limiter(
        f"{app_settings.RATE_LIMITER_KEY}:{_environment_key()}",
        options["rate"],
        options["burst"],
        redis_url=app_settings.REDIS_URL,
    )
    return Gateway(
        get_client(),
        limiter,
        default_pause=float(app_settings.RATE_LIMITED_PAUSE_SECONDS),
        max_rate_limited_wait=float(app_settings.RATE_LIMITED_MAX_WAIT_SECONDS),
        stats=_stats,
        email_index=email_index(run.pk),
    )


def _environment_key() -> str:
    from scalekit_auth.conf import app_settings as auth_settings

    return auth_settings.ENVIRONMENT_URL.split("://")[-1].rstrip("/") or "default"


def backoff_delay(attempt: int) -> float:
    base = float(app_settings.BACKOFF_BASE_SECONDS)
    ceiling = float(app_settings.BACKOFF_MAX_SECONDS)
    return min(base * (2 ** (attempt - 1)), ceiling) * (0.5 + random.random() * 0.5)


def claim(run: ImportRun, kind: str, lo: int, hi: int, token: str) -> list[ImportRecord]:
    now = timezone.now()
    stale = now - timedelta(seconds=float(app_settings.LEASE_SECONDS))
    claimable = Q(status=Status.PENDING) | Q(status=Status.IN_FLIGHT, claimed_at__lt=stale)
    # A redelivered Celery message carries the same task id: it takes back its own records.
    claimable |= Q(status=Status.IN_FLIGHT, claimed_by=token)
    ImportRecord.objects.filter(run=run, kind=kind, id__gte=lo, id__lte=hi).filter(
        claimable
    ).update(
        status=Status.IN_FLIGHT,
        claimed_by=token,
        claimed_at=now,
        first_claimed_at=Coalesce(F("first_claimed_at"), Value(now)),
        recheck=Case(When(status=Status.IN_FLIGHT, then=Value(True)), default=F("recheck")),
    )
    return list(
        ImportRecord.objects.filter(
            run=run, kind=kind, id__gte=lo, id__lte=hi, claimed_by=token, status=Status.IN_FLIGHT
        )
    )


def load_organizations(run: ImportRun, records: list[ImportRecord]) -> dict[str, OrganizationRef]:
    wanted = {
        m["organization"] for record in records for m in record.payload.get("memberships", [])
    }
    refs: dict[str, OrganizationRef] = {}
    rows = (
        run.records.filter(kind=ImportRecord.Kind.ORGANIZATION, key__in=list(wanted))
        .exclude(status=Status.INVALID)
        .values_list("key", "status", "scalekit_id", "last_error", "retryable")
    )
    for key, status, scalekit_id, error, retryable in rows:
        refs[key] = OrganizationRef(key, status, scalekit_id, error, retryable)
    return refs


def load_unavailable_roles(run: ImportRun, records: list[ImportRecord]) -> dict[str, RoleRef]:
    """The roles these users name that this run had to create and did not (failed, or not sent)."""
    wanted = {
        role
        for record in records
        for m in record.payload.get("memberships", [])
        for role in m["roles"]
    }
    rows = (
        run.records.filter(kind=ImportRecord.Kind.ROLE, key__in=list(wanted))
        .exclude(status__in=[Status.INVALID, Status.SUCCEEDED])
        .values_list("key", "status", "last_error", "retryable")
    )
    return {key: RoleRef(key, status, error, retryable) for key, status, error, retryable in rows}


def process_record(
    record: ImportRecord, flow: Callable, ctx: FlowContext, max_attempts: int
) -> None:
    """Send one record, retrying transient errors with jittered backoff; never raises but Fatal."""
    for attempt in range(1, max_attempts + 1):
        record.attempts += 1
        try:
            flow(record, ctx)
            return
        except Fatal:
            raise
        except Permanent as exc:
            fail(record, exc, retryable=False)
            return
        except Transient as exc:
            # The call may have reached Scalekit before failing: look before sending again.
            record.recheck = True
            if exc.code == "dependency" or attempt == max_attempts:
                fail(record, exc, retryable=True)
                return
            time.sleep(backoff_delay(attempt))
        except ScalekitCallError as exc:  # AlreadyExists / NotFound a flow did not expect
            fail(record, exc, retryable=False)
            return
        except Exception:
            logger.exception("migration: unexpected error on %s record %s", record.kind, record.pk)
            record.recheck = True
            fail(
                record,
                Permanent("unexpected error (see the worker log)", "unexpected"),
                retryable=True,
            )
            return


def fail(record: ImportRecord, exc: ScalekitCallError, *, retryable: bool) -> None:
    record.status = Status.FAILED
    record.error_code = exc.code[:40]
    record.last_error = exc.message
    record.retryable = retryable


@dataclass
class ClaimedBatch:
    """Records claimed by one token, with what their flow needs (loaded before sending)."""

    run_id: int
    kind: str
    token: str
    records: list[ImportRecord]
    ctx: FlowContext | None = None
    max_attempts: int = 1
    done: int = 0
    fatal: Fatal | None = None
    stopped: str = ""


def claim_batch(run_id: int, kind: str, lo: int, hi: int, token: str | None = None) -> ClaimedBatch:
    """Claim the records ``lo..hi`` of ``kind`` and load their context (no Scalekit call but,
    once per process, building the SDK client, which is done before claiming anything)."""
    token = token or uuid.uuid4().hex
    with ledger_lock():
        run = ImportRun.objects.get(pk=run_id)
    if run.status != ImportRun.Status.RUNNING:
        return ClaimedBatch(run_id, kind, token, [], stopped=run.status)
    gateway = build_gateway(run)
    with ledger_lock():
        records = claim(run, kind, lo, hi, token)
        users = kind == ImportRecord.Kind.USER and bool(records)
        organizations = load_organizations(run, records) if users else {}
        unavailable_roles = load_unavailable_roles(run, records) if users else {}
        rechecked = users and any(r.recheck for r in records)
        created_roles = roles_created_by(run.pk) if rechecked else None
    batch = ClaimedBatch(run_id, kind, token, records)
    if records:
        options = run_options(run)
        batch.max_attempts = options["max_attempts"]
        batch.ctx = FlowContext(
            gateway=gateway,
            send_invitation_email=options["send_invitation_email"],
            invite_unverified=options["invite_unverified"],
            organizations=organizations,
            existing_roles=set(run.options.get("existing_roles", [])),
            unavailable_roles=unavailable_roles,
            created_roles=created_roles,
        )
    return batch


def roles_created_by(run_id: int) -> set[str]:
    """The roles the run created: what a re-checked user may claim to have added (see
    ``FlowContext.roles_created_by_run``). Read at claim time, with the rest of the context."""
    created = ImportRecord.objects.filter(
        run_id=run_id, kind=ImportRecord.Kind.ROLE, outcome=ImportRecord.Outcome.CREATED
    )
    return set(created.values_list("key", flat=True))


def send_batch(
    batch: ClaimedBatch,
    should_stop: Callable[[], bool] | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> ClaimedBatch:
    """Send the claimed records one after the other (no database access but through the
    callbacks: ``should_stop`` every few records, ``heartbeat`` after each one)."""
    flow = FLOWS[batch.kind]
    try:
        for index, record in enumerate(batch.records):
            if index and index % CANCEL_CHECK_EVERY == 0 and should_stop and should_stop():
                batch.stopped = "cancelled"
                break
            process_record(record, flow, batch.ctx, batch.max_attempts)
            batch.done += 1
            if heartbeat:
                heartbeat()
    except Fatal as exc:
        batch.fatal = exc
    return batch


class LeaseKeeper:
    """Renews a live batch's lease once a third of it has gone by (one UPDATE, and only then),
    so that only the records of a dead worker ever have an expired lease.

    ``token`` is the batch's claim token (a Celery task), or a callable returning the tokens of
    every batch still on the network (the in-process runner renews them all from its one
    database thread).
    """

    def __init__(
        self,
        token: str | Callable[[], Collection[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = token if callable(token) else (lambda: [token])
        self.clock = clock
        self.renewed = clock()

    def __call__(self) -> None:
        if self.clock() - self.renewed < float(app_settings.LEASE_SECONDS) / 3:
            return
        tokens = list(self.tokens())
        if tokens:
            with ledger_lock():
                ImportRecord.objects.filter(claimed_by__in=tokens, status=Status.IN_FLIGHT).update(
                    claimed_at=timezone.now()
                )
        self.renewed = self.clock()


def save_batch(batch: ClaimedBatch) -> BatchResult:
    """Write the outcome back (one bulk update); stop the run on rejected credentials."""
    result = BatchResult(kind=batch.kind, claimed=len(batch.records), stopped=batch.stopped)
    if batch.records:
        save(batch.records, batch.done, batch.token, result)
    if batch.fatal is not None:
        stop_run(batch.run_id, f"Scalekit refused the credentials: {batch.fatal.message}")
        result.stopped = "failed"
    return result


def run_batch(run_id: int, kind: str, lo: int, hi: int, *, token: str | None = None) -> BatchResult:
    """Claim, send and save one batch in this thread (what a Celery task does)."""
    batch = claim_batch(run_id, kind, lo, hi, token)
    if not batch.records:
        return BatchResult(kind=kind, stopped=batch.stopped)
    keeper = LeaseKeeper(batch.token)
    if batch.ctx is not None:
        batch.ctx.gateway.heartbeat = keeper
    try:
        send_batch(batch, lambda: run_stopped(run_id), keeper)
    finally:
        result = save_batch(batch)
    return result


def save(records: list[ImportRecord], done: int, token: str, result: BatchResult) -> None:
    now = timezone.now()
    for record in records[:done]:
        if record.status == Status.IN_FLIGHT:  # a flow that returned without a verdict
            record.status = Status.PENDING
        record.claimed_by = ""
        record.updated_at = now
        if record.status == Status.SUCCEEDED:
            result.succeeded += 1
            result.outcomes[record.outcome] = result.outcomes.get(record.outcome, 0) + 1
        elif record.status == Status.FAILED:
            result.failed += 1
    for record in records[done:]:
        record.status = Status.PENDING
        record.claimed_by = ""
        record.claimed_at = None
        record.updated_at = now
        result.released += 1
    # Most records end the same way (succeeded, created, first attempt): those are written
    # with one UPDATE per outcome whose only per-row value is the Scalekit id, which is far
    # cheaper than a CASE per field per row. The others go through bulk_update.
    plain: dict[tuple[str, int], list[ImportRecord]] = {}
    others: list[ImportRecord] = []
    for record in records:
        if record.status == Status.SUCCEEDED and not record.result and record.scalekit_id:
            plain.setdefault((record.outcome, record.attempts), []).append(record)
        else:
            others.append(record)
    with ledger_lock(), transaction.atomic():
        # Only rows this claim still holds: a worker that lost its lease changes nothing.
        held = ImportRecord.objects.filter(claimed_by=token)
        for (outcome, attempts), group in plain.items():
            for start in range(0, len(group), SAVE_CHUNK):
                chunk = group[start : start + SAVE_CHUNK]
                held.filter(pk__in=[r.pk for r in chunk]).update(
                    status=Status.SUCCEEDED,
                    outcome=outcome,
                    attempts=attempts,
                    error_code="",
                    last_error="",
                    retryable=False,
                    recheck=False,
                    claimed_by="",
                    updated_at=now,
                    scalekit_id=Case(
                        *[When(pk=r.pk, then=Value(r.scalekit_id)) for r in chunk],
                        output_field=CharField(),
                    ),
                )
        if others:
            held.bulk_update(others, SAVED_FIELDS, batch_size=SAVE_CHUNK)


def run_stopped(run_id: int) -> bool:
    with ledger_lock():
        status = ImportRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
    return status != ImportRun.Status.RUNNING


def stop_run(run_id: int, message: str) -> None:
    with ledger_lock():
        ImportRun.objects.filter(pk=run_id, status=ImportRun.Status.RUNNING).update(
            status=ImportRun.Status.FAILED, message=message, finished_at=timezone.now()
        )
