"""What the admin shows while and after a run: counts, rate and ETA (SDK against the emulator)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from migration.batches import ledger_lock
from migration.ingest import create_run
from migration.models import ImportRun
from migration.reporting import EXIT_OK
from migration.sources import open_file_source

from .conftest import FAST_MIGRATION

pytestmark = pytest.mark.django_db(transaction=True)


def users_file(write, count: int):
    return write(
        "users.csv",
        "email,org_external_id\n" + "".join(f"p{i}@example.com,acme\n" for i in range(count)),
    )


def test_counts_move_during_an_inprocess_run(scalekit, write, organizations_csv):
    from migration.runner import execute

    scalekit.control.set_faults(latency_ms=80)
    users = users_file(write, 60)
    seen: list[tuple[int, float | None]] = []
    with override_settings(MIGRATION={**FAST_MIGRATION, "CONCURRENCY": 2, "BATCH_SIZE": 5}):
        run = create_run(
            [open_file_source("organization", organizations_csv), open_file_source("user", users)]
        )
        worker = threading.Thread(target=execute, args=(run,))
        worker.start()
        while worker.is_alive():
            with ledger_lock():
                counts, throughput = ImportRun.objects.values_list("counts", "throughput").get()
            seen.append((counts.get("user", {}).get("succeeded", 0), throughput))
            time.sleep(0.1)
        worker.join()
    partial = [(n, rate) for n, rate in seen if 0 < n < 60]
    assert partial, seen  # the stored counts moved while users were being sent
    assert all(rate for _, rate in partial)  # and so did the rate the ETA is computed from


def test_rate_after_a_resume_counts_only_the_current_execution(
    scalekit, command, write, organizations_csv
):
    users = users_file(write, 10)
    run = create_run(
        [open_file_source("organization", organizations_csv), open_file_source("user", users)]
    )
    # Started an hour ago and cancelled at once: that hour is not part of the resumed work.
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.CANCELLED,
        started_at=timezone.now() - timedelta(hours=1),
        finished_at=timezone.now() - timedelta(hours=1),
    )
    resumed = command("migration_resume", run.pk, "--no-progress", "--json")
    assert resumed.code == EXIT_OK, resumed
    run.refresh_from_db()
    assert run.resumed_at > run.started_at + timedelta(minutes=59)
    assert run.throughput > 1.0  # 12 records in seconds, not 12 in an hour (0.003/s)
