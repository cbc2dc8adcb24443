from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from migration.models import ImportRecord, ImportRun

Status = ImportRecord.Status


@pytest.mark.django_db
def test_counts_progress_throughput_and_eta(run_factory, record_factory):
    run = run_factory(
        status=ImportRun.Status.RUNNING, started_at=timezone.now() - timedelta(seconds=10)
    )
    record_factory.create_batch(6, run=run, status=Status.SUCCEEDED, outcome="created")
    record_factory.create_batch(2, run=run, status=Status.SUCCEEDED, outcome="existing")
    record_factory.create_batch(2, run=run, status=Status.FAILED)
    record_factory.create_batch(10, run=run, status=Status.PENDING)
    record_factory.create_batch(3, run=run, status=Status.INVALID)
    run.refresh_counts()
    assert run.counts["user"] == {
        "succeeded": 8,
        "outcome_created": 6,
        "outcome_existing": 2,
        "failed": 2,
        "pending": 10,
        "invalid": 3,
    }
    assert run.to_send == 20 and run.done == 10
    assert run.progress == 0.5
    assert 0.9 <= run.throughput <= 1.0  # 10 done in ~10 s
    assert 9 <= run.eta.total_seconds() <= 12
    stored = ImportRun.objects.get(pk=run.pk)
    assert stored.counts == run.counts and stored.throughput == run.throughput


@pytest.mark.django_db
def test_one_valid_record_per_key_and_run(run_factory, record_factory):
    run = run_factory()
    record_factory(run=run, key="k1")
    record_factory(run=run, key="k1", status=Status.INVALID)  # invalid duplicates are kept
    with pytest.raises(IntegrityError):
        record_factory(run=run, key="k1")


@pytest.mark.django_db
def test_finished_run_has_no_eta(run_factory):
    run = run_factory(status=ImportRun.Status.COMPLETED, throughput=10.0)
    assert run.eta is None and run.is_finished
