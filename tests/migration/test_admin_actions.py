"""The admin's actions on real runs: the real SDK against the emulator, executors on threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.contrib.admin.models import LogEntry
from django.test import override_settings
from django.urls import reverse

from migration import runner
from migration.batches import ledger_lock
from migration.ingest import create_run
from migration.models import ImportRecord, ImportRun
from migration.reporting import EXIT_OK
from migration.sources import open_file_source

from .conftest import FAST_MIGRATION
from .test_import import all_users, import_files, organizations_by_external_id

pytestmark = pytest.mark.django_db(transaction=True)
Status = ImportRecord.Status
RUNS = "admin:migration_importrun_changelist"


def post_action(client, action: str, run: ImportRun) -> list[str]:
    """Run an admin action; its messages. Under the ledger lock: the test database is a
    shared-cache in-memory SQLite that an executor thread may be writing."""
    with ledger_lock():
        response = client.post(
            reverse(RUNS), {"action": action, "_selected_action": [run.pk]}, follow=True
        )
    return [str(m) for m in response.context["messages"]]


def reload(run: ImportRun) -> ImportRun:
    with ledger_lock():
        return ImportRun.objects.get(pk=run.pk)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_cancelled_run_resumes_only_once_its_process_has_stopped(
    scalekit, sdk, admin_client, write, organizations_csv
):
    """The reviewer's case: cancelled from the admin while the command-line process still sent
    its batches, then continued from the admin: two executors sent at once."""
    scalekit.control.set_faults(latency_ms=60, methods=["CreateUserAndMembership"])
    users = write(
        "users.csv",
        "email,org_external_id\n" + "".join(f"p{i}@example.com,acme\n" for i in range(40)),
    )
    with override_settings(MIGRATION={**FAST_MIGRATION, "CONCURRENCY": 2, "BATCH_SIZE": 10}):
        run = create_run(
            [open_file_source("organization", organizations_csv), open_file_source("user", users)]
        )
        cli = threading.Thread(target=runner.execute, args=(run,))  # migration_import's work
        cli.start()

        def users_in_flight() -> bool:
            with ledger_lock():
                return run.records.filter(kind="user", status=Status.IN_FLIGHT).exists()

        wait_until(users_in_flight)
        assert post_action(admin_client, "cancel_runs", run)[0].startswith(
            f"Run {run.pk} cancelled"
        )
        [refused] = post_action(admin_client, "resume_runs", run)
        assert refused.startswith(f"Run {run.pk} has ") and "record(s) in flight" in refused
        assert reload(run).status == ImportRun.Status.CANCELLED
        cli.join(timeout=30)
        assert not cli.is_alive()

        with ledger_lock():
            pending = run.records.filter(status=Status.PENDING).count()
        assert 0 < pending < 40
        [resumed] = post_action(admin_client, "resume_runs", run)
        assert resumed == (
            f"Run {run.pk}: resumed {pending} pending and 0 failed-transient record(s), "
            "started in this process."
        )
        wait_until(lambda: reload(run).status != ImportRun.Status.RUNNING)
    assert reload(run).status == ImportRun.Status.COMPLETED
    assert len(all_users(sdk)) == 40
    assert LogEntry.objects.filter(object_id=str(run.pk)).count() == 2  # cancel, resume


def test_counts_split_succeeded_records_and_a_failed_user_names_its_step(
    scalekit, sdk, admin_client, write
):
    """A user created before its second membership failed was counted as created and as
    failed (1,404 + 7 + 92 = 1,503 for 1,501 rows); its error did not say it exists."""
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\ninitech,Initech\n")
    users = write(
        "users.csv", "email,memberships\nann@example.com,acme\nbob@example.com,acme;initech\n"
    )
    with override_settings(MIGRATION=FAST_MIGRATION):
        run = create_run(
            [open_file_source("organization", organizations), open_file_source("user", users)]
        )
        run.status = ImportRun.Status.RUNNING
        run.save()
        runner.plan_roles(run)
        runner.run_phase_inprocess(run, "organization", None)
        initech = organizations_by_external_id(sdk)["initech"]
        sdk.organization.delete_organization(initech)  # gone between organizations and users
        runner.execute(run)

    bob = run.records.get(kind="user", email="bob@example.com")
    assert (bob.status, bob.outcome, bob.error_code) == (Status.FAILED, "created", "not_found")
    assert bob.last_error.startswith(
        f"user {bob.scalekit_id} is in Scalekit, but adding it to organization 'initech' "
        f"({initech}) failed: NOT_FOUND"
    ), bob.last_error
    user = runner.summary(run)["kinds"]["user"]
    assert (user["rows"], user["succeeded"], user["created"], user["failed"]) == (2, 1, 1, 1)
    parts = ("succeeded", "failed", "invalid", "pending", "rolled_back")
    assert sum(user[part] for part in parts) == user["rows"]
    page = admin_client.get(reverse("admin:migration_importrun_change", args=[run.pk]))
    assert "<td>user</td><td>2</td><td>1</td><td>1</td><td>0</td><td>0</td><td>1</td>" in (
        page.content.decode()
    )


def test_admin_verify_runs_once_at_a_time_and_shows_its_progress(
    scalekit, admin_client, command, write, organizations_csv
):
    users = write(
        "users.csv",
        "email,org_external_id\n" + "".join(f"v{i}@example.com,acme\n" for i in range(6)),
    )
    assert import_files(command, users=users, organizations=organizations_csv).code == EXIT_OK
    run = ImportRun.objects.get()
    scalekit.control.set_faults(latency_ms=150, methods=["GetUser"])
    with override_settings(MIGRATION={**FAST_MIGRATION, "CONCURRENCY": 1}):
        [started] = post_action(admin_client, "verify_runs", run)
        assert started.startswith(f"Run {run.pk}: verification started in this process")
        [refused] = post_action(admin_client, "verify_runs", run)
        assert refused.startswith(f"Run {run.pk} is being verified since ")
        with ledger_lock():
            listing = admin_client.get(reverse(RUNS)).content.decode()
        assert "verifying… (" in listing
        wait_until(lambda: reload(run).verifying_since is None)
    run = reload(run)
    assert run.verified_at is not None and run.differences == 0
    assert run.verify_checked == 2 + 6  # organizations acme and globex, six users
    entries = LogEntry.objects.filter(object_id=str(run.pk))
    assert [e.get_change_message() for e in entries] == ["Verification started in this process."]
