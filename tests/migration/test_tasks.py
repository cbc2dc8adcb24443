"""The beat task that requeues a dead worker's records (called directly; the real worker
machinery is exercised in test_distributed.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from migration.models import ImportRecord, ImportRun
from migration.tasks import requeue_expired

Status = ImportRecord.Status


@pytest.fixture
def queued(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(
        "migration.tasks.process_batch.delay", lambda *args: calls.append(args), raising=False
    )
    return calls


@pytest.mark.django_db
@override_settings(MIGRATION={"LEASE_SECONDS": 60, "BATCH_SIZE": 2})
def test_expired_leases_of_celery_runs_are_requeued_once(run_factory, record_factory, queued):
    run = run_factory(status=ImportRun.Status.RUNNING, options={"mode": "celery"})
    old, fresh = timezone.now() - timedelta(seconds=120), timezone.now()
    dead = record_factory.create_batch(
        3, run=run, status=Status.IN_FLIGHT, claimed_by="dead-task", claimed_at=old
    )
    live = record_factory(run=run, status=Status.IN_FLIGHT, claimed_by="live", claimed_at=fresh)
    inprocess = run_factory(status=ImportRun.Status.RUNNING, options={"mode": "inprocess"})
    elsewhere = record_factory(
        run=inprocess, status=Status.IN_FLIGHT, claimed_by="thread", claimed_at=old
    )
    stopped = run_factory(status=ImportRun.Status.CANCELLED, options={"mode": "celery"})
    record_factory(run=stopped, status=Status.IN_FLIGHT, claimed_by="t", claimed_at=old)

    assert requeue_expired() == {run.pk: 3}
    ids = [r.pk for r in dead]
    assert queued == [(run.pk, "user", ids[0], ids[1]), (run.pk, "user", ids[2], ids[2])]
    for record in ImportRecord.objects.filter(pk__in=ids):
        assert (record.status, record.recheck, record.claimed_by) == (Status.PENDING, True, "")
    live.refresh_from_db()
    elsewhere.refresh_from_db()
    assert live.status == Status.IN_FLIGHT and elsewhere.status == Status.IN_FLIGHT

    assert requeue_expired() == {}  # idempotent: nothing expired is left
    assert len(queued) == 2


@pytest.mark.django_db
@override_settings(MIGRATION={"LEASE_SECONDS": 60, "BATCH_SIZE": 2})
def test_a_stalled_phase_is_queued_again_once(run_factory, record_factory, queued):
    """A batch the dead worker had fetched but not claimed: pending records nobody works on."""
    long_ago = timezone.now() - timedelta(minutes=10)
    run = run_factory(
        status=ImportRun.Status.RUNNING,
        phase=ImportRun.Phase.USERS,
        options={"mode": "celery"},
        started_at=long_ago,
    )
    done = record_factory.create_batch(2, run=run, status=Status.SUCCEEDED, outcome="created")
    waiting = record_factory.create_batch(3, run=run, status=Status.PENDING)
    ImportRecord.objects.update(updated_at=long_ago)
    busy = run_factory(
        status=ImportRun.Status.RUNNING,
        phase=ImportRun.Phase.USERS,
        options={"mode": "celery"},
        started_at=long_ago,
    )
    record_factory(run=busy, status=Status.PENDING)
    record_factory(run=busy, status=Status.SUCCEEDED)  # written just now: progressing

    assert requeue_expired() == {run.pk: 3}
    covered = {pk for _, kind, lo, hi in queued for pk in range(lo, hi + 1) if kind == "user"}
    assert {r.pk for r in waiting} <= covered and not {r.pk for r in done} & covered
    assert {run_id for run_id, *_ in queued} == {run.pk}
    sent = len(queued)
    assert requeue_expired() == {}  # not again within the lease
    assert len(queued) == sent


@pytest.mark.django_db
@override_settings(MIGRATION={"LEASE_SECONDS": 30})
def test_a_live_batch_renews_its_lease_after_a_third_of_it(run_factory, record_factory):
    from migration import batches

    run = run_factory(status=ImportRun.Status.RUNNING, options={"mode": "celery"})
    claimed = timezone.now() - timedelta(seconds=25)
    mine = record_factory(run=run, status=Status.IN_FLIGHT, claimed_by="me", claimed_at=claimed)
    other = record_factory(run=run, status=Status.IN_FLIGHT, claimed_by="x", claimed_at=claimed)
    clock = [1000.0]
    keeper = batches.LeaseKeeper("me", clock=lambda: clock[0])
    clock[0] += 5  # under a third of 30 s: no query
    keeper()
    mine.refresh_from_db()
    assert mine.claimed_at == claimed
    clock[0] += 6
    keeper()
    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.claimed_at > claimed + timedelta(seconds=20) and other.claimed_at == claimed
    assert requeue_expired() == {}  # renewed: not taken from the live batch


@pytest.mark.django_db
@override_settings(MIGRATION={"LEASE_SECONDS": 60})
def test_a_run_whose_last_batch_never_advanced_it_is_finished(run_factory, record_factory):
    long_ago = timezone.now() - timedelta(minutes=10)
    run = run_factory(
        status=ImportRun.Status.RUNNING,
        phase=ImportRun.Phase.USERS,
        options={"mode": "celery"},
        started_at=long_ago,
    )
    record_factory.create_batch(2, run=run, status=Status.SUCCEEDED, outcome="created")
    ImportRecord.objects.update(updated_at=long_ago)

    assert requeue_expired() == {}
    run.refresh_from_db()
    assert (run.status, run.phase) == (ImportRun.Status.COMPLETED, ImportRun.Phase.DONE)
