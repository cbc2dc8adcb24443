"""Starting, resuming and retrying runs: what the runner refuses, and leases held in-process.

Through the real SDK and the emulator, in-process (threads, SQLite), like test_import.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse

from migration import runner
from migration.batches import claim, ledger_lock
from migration.ingest import create_run
from migration.models import ImportRecord, ImportRun
from migration.reporting import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE
from migration.sources import open_file_source

from .conftest import FAST_MIGRATION

pytestmark = pytest.mark.django_db(transaction=True)
Status = ImportRecord.Status


def scalekit_organizations(sdk) -> list[str]:
    return [
        o.external_id for o in sdk.organization.list_organizations(page_size=100)[0].organizations
    ]


def scalekit_users(sdk) -> list[str]:
    return [u.email for u in sdk.users.list_users(page_size=100)[0].users]


# a source never fully read ------------------------------------------------------------------
def test_a_run_whose_source_could_not_be_read_is_not_resumed(
    scalekit, sdk, command, write, organizations_csv
):
    """The organizations were read, then the users file's header was refused: resuming used to
    import the organizations alone and report the run completed."""
    users = write("users.csv", "email,external_id,org_external_id,bogus\nx@example.com,u1,acme,1\n")
    imported = command(
        "migration_import", "--users", users, "--organizations", organizations_csv, "--no-progress"
    )
    assert imported.code == EXIT_USAGE and "bogus" in imported.err
    run = ImportRun.objects.get()
    assert (run.status, run.phase) == (ImportRun.Status.FAILED, ImportRun.Phase.INGEST)

    resumed = command("migration_resume", run.pk, "--no-progress")
    assert resumed.code == EXIT_USAGE, resumed
    assert f"Run {run.pk} never had its whole source in the ledger (reading it failed: " in (
        resumed.err
    )
    assert "import the source again (a new run)" in resumed.err
    assert command("migration_resume", run.pk, "--takeover", "--retry-failed").code == EXIT_USAGE
    assert scalekit_organizations(sdk) == []
    run.refresh_from_db()
    assert (run.status, run.phase) == (ImportRun.Status.FAILED, ImportRun.Phase.INGEST)


@pytest.fixture
def crashed_during_ingest(run_factory, record_factory):
    """What a process killed while reading the source leaves: pending, in the ingest phase, part
    of the rows written (one failed record too, so that the record retry has one to take)."""
    run = run_factory(status=ImportRun.Status.PENDING, phase=ImportRun.Phase.INGEST)
    record_factory(run=run, status=Status.PENDING)
    failed = record_factory(run=run, status=Status.FAILED, retryable=True, error_code="unavailable")
    run.refresh_counts()
    return run, failed


def test_a_run_left_in_the_ingest_phase_is_refused_everywhere(
    migration_settings, command, admin_client, crashed_during_ingest
):
    run, failed = crashed_during_ingest
    resumed = command("migration_resume", run.pk, "--no-progress")
    assert resumed.code == EXIT_USAGE
    assert "(reading it has not completed)" in resumed.err and "a new run" in resumed.err

    response = admin_client.post(
        reverse("admin:migration_importrun_changelist"),
        {"action": "retry_failed", "_selected_action": [run.pk]},
        follow=True,
    )
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("import the source again (a new run)" in m for m in shown), shown
    response = admin_client.post(
        reverse("admin:migration_importrecord_changelist"),
        {"action": "retry_records", "_selected_action": [failed.pk]},
        follow=True,
    )
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("import the source again (a new run)" in m for m in shown), shown

    with pytest.raises(runner.NotResumable, match="import the source again"):
        runner.launch(run)
    with pytest.raises(runner.NotResumable):
        runner.prepare_resume(run, retry_failed=True)
    with pytest.raises(runner.NotResumable):
        runner.retry_records(run, [failed.pk])
    failed.refresh_from_db()
    run.refresh_from_db()
    assert failed.status == Status.FAILED  # nothing was put back
    assert (run.status, run.phase) == (ImportRun.Status.PENDING, ImportRun.Phase.INGEST)
    assert not LogEntry.objects.exists()


def test_ingest_complete_follows_the_phase_and_accepts_older_complete_runs(run_factory):
    assert not runner.ingest_complete(run_factory(phase=ImportRun.Phase.INGEST))
    assert runner.ingest_complete(run_factory(phase=ImportRun.Phase.ROLES))
    # Ingested before the phase moved on at the end of ingest: the checksum was written last.
    assert runner.ingest_complete(run_factory(phase=ImportRun.Phase.INGEST, checksum="ab" * 32))


# a run still marked running -----------------------------------------------------------------
def test_resume_refuses_a_running_run_unless_takeover(
    scalekit, sdk, command, write, organizations_csv
):
    users = write("users.csv", "email,external_id,org_external_id\na@example.com,u1,acme\n")
    run = create_run(
        [open_file_source("organization", organizations_csv), open_file_source("user", users)]
    )
    runner.start(run, "inprocess")  # a live process may be sending it, or it died

    refused = command("migration_resume", run.pk, "--no-progress")
    assert refused.code == EXIT_USAGE, refused
    assert f"Run {run.pk} is running (mode: inprocess)" in refused.err
    assert f"migration_cancel {run.pk}" in refused.err and "--takeover" in refused.err
    assert scalekit_organizations(sdk) == []  # nothing sent, nothing taken

    resumed = command("migration_resume", run.pk, "--takeover", "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    assert scalekit_users(sdk) == ["a@example.com"]


def test_resume_refuses_a_stopped_run_whose_records_are_still_in_flight_unless_takeover(
    scalekit, sdk, command, write, organizations_csv
):
    """A cancelled process may still hold live leases: a second executor would send beside it."""
    users = write("users.csv", "email,external_id,org_external_id\na@example.com,u1,acme\n")
    run = create_run(
        [open_file_source("organization", organizations_csv), open_file_source("user", users)]
    )
    run.status = ImportRun.Status.CANCELLED
    run.save()
    record = run.records.get(kind="user")
    claim(run, "user", record.pk, record.pk, "cancelled-but-alive")

    refused = command("migration_resume", run.pk, "--no-progress")
    assert refused.code == EXIT_USAGE, refused
    assert f"Run {run.pk} has 1 record(s) in flight" in refused.err
    assert scalekit_organizations(sdk) == []

    resumed = command("migration_resume", run.pk, "--takeover", "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    assert scalekit_users(sdk) == ["a@example.com"]


def test_in_process_batches_keep_their_lease_through_rate_limit_pauses(
    scalekit, sdk, write, organizations_csv
):
    """Each user waits out a RESOURCE_EXHAUSTED pause (retry-after) longer than the lease: a
    resume from another shell (a second claimer) must not take the live batch's records."""
    users = write(
        "users.csv",
        "email,external_id,org_external_id\n"
        + "".join(f"u{i}@example.com,x{i},acme\n" for i in range(3)),
    )
    lease = 1.2
    settings = {**FAST_MIGRATION, "LEASE_SECONDS": lease, "CONCURRENCY": 1, "BATCH_SIZE": 10}
    with override_settings(MIGRATION=settings):
        run = create_run(
            [open_file_source("organization", organizations_csv), open_file_source("user", users)]
        )
        ids = list(run.records.filter(kind="user").values_list("id", flat=True))
        scalekit.control.set_faults(
            rate_limit_rps=0.6, rate_limit_burst=1, methods=["CreateUserAndMembership"]
        )
        worker = threading.Thread(target=runner.execute, args=(run,))
        worker.start()
        taken: list[ImportRecord] = []
        in_flight_seen = 0.0
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            with ledger_lock():
                if run.records.filter(kind="user", status=Status.IN_FLIGHT).exists():
                    in_flight_seen = in_flight_seen or time.monotonic()
                    taken += claim(run, "user", min(ids), max(ids), "another-shell")
            if taken:
                break
            time.sleep(0.1)
        worker.join(timeout=60)
    scalekit.control.clear_faults()
    assert in_flight_seen and not taken, [r.email for r in taken]
    assert scalekit.control.counters()["rejected"], "no rate-limit pause happened"
    run.refresh_from_db()
    assert run.status == ImportRun.Status.COMPLETED
    assert sorted(scalekit_users(sdk)) == [f"u{i}@example.com" for i in range(3)]


# dry run --------------------------------------------------------------------------------------
def test_dry_run_counts_users_naming_a_role_that_exists_nowhere_as_invalid(
    scalekit, sdk, command, write, organizations_csv
):
    users = write(
        "users.csv",
        "email,external_id,memberships\na@example.com,u1,acme:ghost\nb@example.com,u2,acme\n",
    )
    result = command(
        "migration_import",
        "--users",
        users,
        "--organizations",
        organizations_csv,
        "--dry-run",
        "--no-progress",
    )
    assert result.code == EXIT_PROBLEMS, result
    assert "roles named but neither in Scalekit nor defined: ghost (1 user row(s)" in result.out
    run = ImportRun.objects.get()
    ghost = run.records.get(kind="user", key="u1")
    assert (ghost.status, ghost.error_code) == (Status.INVALID, "unknown_role")
    assert run.status == ImportRun.Status.COMPLETED_WITH_ERRORS and run.count("invalid") == 1
    assert scalekit_organizations(sdk) == []


# admin verify ---------------------------------------------------------------------------------
def test_admin_verify_failure_on_a_thread_is_logged_and_shown_on_the_run(
    migration_settings, admin_client, run_factory, record_factory, caplog
):
    run = run_factory(status=ImportRun.Status.COMPLETED, phase=ImportRun.Phase.DONE)
    record_factory(run=run, status=Status.SUCCEEDED, outcome="created", scalekit_id="usr_1")
    unconfigured = {"ENVIRONMENT_URL": "", "CLIENT_ID": "", "CLIENT_SECRET": "", "CA_BUNDLE": ""}
    with (
        override_settings(SCALEKIT_AUTH=unconfigured, CELERY_BROKER_URL="memory://"),
        caplog.at_level(logging.ERROR, logger="migration.runner"),
    ):
        admin_client.post(
            reverse("admin:migration_importrun_changelist"),
            {"action": "verify_runs", "_selected_action": [run.pk]},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with ledger_lock():
                run.refresh_from_db()
            if run.message:
                break
            time.sleep(0.1)
    assert run.message.startswith("verify failed: Scalekit is not configured: set"), run.message
    assert f"migration: verify of run {run.pk} failed" in caplog.text


def test_celery_verify_failure_is_shown_on_the_run(
    migration_settings, run_factory, record_factory, caplog
):
    from migration.tasks import verify_run

    run = run_factory(status=ImportRun.Status.COMPLETED, phase=ImportRun.Phase.DONE)
    record_factory(run=run, status=Status.SUCCEEDED, outcome="created", scalekit_id="usr_1")
    unconfigured = {"ENVIRONMENT_URL": "", "CLIENT_ID": "", "CLIENT_SECRET": "", "CA_BUNDLE": ""}
    with (
        override_settings(SCALEKIT_AUTH=unconfigured),
        caplog.at_level(logging.ERROR, logger="migration.runner"),
    ):
        verify_run.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.message.startswith("verify failed: Scalekit is not configured: set"), run.message
    assert f"migration: verify of run {run.pk} failed" in caplog.text
