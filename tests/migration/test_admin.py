"""The import ledger in the admin: lists, read-only pages, actions and what they refuse."""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from migration.admin import ErrorCodeFilter
from migration.models import ImportRecord, ImportRun

Status = ImportRecord.Status
RUNS = "admin:migration_importrun_changelist"


def post_action(client, action: str, *runs: ImportRun):
    return client.post(
        reverse(RUNS), {"action": action, "_selected_action": [r.pk for r in runs]}, follow=True
    )


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def action_names(response) -> list[str]:
    return [name for name, _ in response.context["action_form"].fields["action"].choices]


@pytest.fixture
def viewer(client, django_user_model):
    """A staff user who may view the ledger and nothing else, logged in."""
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="migration", codename__startswith="view_")
    )
    client.force_login(user)
    return client


@pytest.fixture
def run_with_records(run_factory, record_factory):
    run = run_factory(status=ImportRun.Status.RUNNING)
    record_factory.create_batch(3, run=run, status=Status.SUCCEEDED, outcome="created")
    record_factory(
        run=run,
        status=Status.FAILED,
        error_code="bad_request",
        last_error='=HYPERLINK("http://evil")',
    )
    record_factory(
        run=run,
        status=Status.INVALID,
        error_code="invalid_email",
        last_error="email: 'x' is not an email address (no '@')",
    )
    record_factory(run=run, status=Status.PENDING)
    run.refresh_counts()
    return run


def finished_run(run_factory, record_factory, status=ImportRun.Status.COMPLETED, **fields):
    """A run that ended an hour ago with 3 users created."""
    finished = timezone.now() - timedelta(hours=1)
    run = run_factory(
        status=status,
        phase="done",
        checksum="c" * 64,
        started_at=finished - timedelta(minutes=5),
        resumed_at=finished - timedelta(minutes=5),
        finished_at=finished,
        **fields,
    )
    record_factory.create_batch(3, run=run, status=Status.SUCCEEDED, outcome="created")
    run.refresh_counts()
    return ImportRun.objects.get(pk=run.pk)


def test_run_changelist_shows_progress_and_counts(admin_client, run_with_records):
    response = admin_client.get(reverse(RUNS))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'title="3 succeeded"' in html and 'title="1 failed"' in html
    assert "80.0% done" in html  # 4 of the 5 records to send are done


def test_run_change_page_has_the_counts_table(admin_client, run_with_records):
    response = admin_client.get(
        reverse("admin:migration_importrun_change", args=[run_with_records.pk])
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert '<th colspan="4" style="text-align:center">succeeded</th>' in html
    assert "<th>created</th>" in html
    # kind, rows, succeeded (all, created, already there, corrected), failed, invalid...
    assert "<td>user</td><td>6</td><td>3</td><td>3</td><td>0</td><td>0</td><td>1</td>" in html


def test_records_filter_by_status_and_error(admin_client, run_with_records):
    url = reverse("admin:migration_importrecord_changelist")
    response = admin_client.get(url, {"error_code": "invalid_email"})
    assert response.status_code == 200
    assert list(response.context["cl"].queryset.values_list("status", flat=True)) == ["invalid"]
    response = admin_client.get(url, {"status__exact": "failed"})
    assert list(response.context["cl"].queryset.values_list("error_code", flat=True)) == [
        "bad_request"
    ]


def test_cancel_action_stops_the_run_and_logs(admin_client, admin_user, run_with_records):
    response = post_action(admin_client, "cancel_runs", run_with_records)
    assert response.status_code == 200
    run_with_records.refresh_from_db()
    assert run_with_records.status == ImportRun.Status.CANCELLED
    entry = LogEntry.objects.get(object_id=str(run_with_records.pk))
    assert entry.user == admin_user and entry.get_change_message() == "Cancelled the run."
    [message] = shown_messages(response)
    assert "'Resume cancelled or stopped runs'" in message
    assert f"manage.py migration_rollback {run_with_records.pk}" in message


def test_download_failures_is_safe_csv_and_not_a_change(viewer, run_with_records, caplog):
    """A view-only user may download; the download is logged as a read, not as a change."""
    with caplog.at_level(logging.INFO, logger="migration.admin"):
        response = viewer.post(
            reverse(RUNS),
            {"action": "download_failures", "_selected_action": [run_with_records.pk]},
        )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["status"], r["error_code"]) for r in rows] == [
        ("failed", "bad_request"),
        ("invalid", "invalid_email"),
    ]
    assert rows[0]["reason"].startswith("'=HYPERLINK")  # a formula is neutralised
    assert not LogEntry.objects.exists()
    expected = f"viewer downloaded the failures of run(s) {run_with_records.pk} (2 row(s))"
    assert expected in caplog.text


def test_retry_refuses_a_running_run(admin_client, run_with_records):
    ImportRun.objects.filter(pk=run_with_records.pk).update(phase="users", checksum="c" * 64)
    response = post_action(admin_client, "retry_failed", run_with_records)
    assert run_with_records.records.filter(status=Status.FAILED).count() == 1
    assert not LogEntry.objects.exists()
    [message] = shown_messages(response)
    assert message.startswith(f"Run {run_with_records.pk} is running (mode: unknown)")


def test_retry_refuses_each_run_with_nothing_failed(admin_client, run_factory, record_factory):
    """A completed run without failures is left exactly as it was (it was restarted: new
    resumed_at and finished_at, rate wiped, 'Retried 0 failed record(s)' logged)."""
    first = finished_run(run_factory, record_factory)
    second = finished_run(run_factory, record_factory)
    before = ImportRun.objects.filter(pk=first.pk).values().get()
    response = post_action(admin_client, "retry_failed", first, second)
    assert sorted(shown_messages(response)) == [
        f"Run {first.pk} has no failed record: nothing to retry.",
        f"Run {second.pk} has no failed record: nothing to retry.",
    ]
    assert ImportRun.objects.filter(pk=first.pk).values().get() == before
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("action", ["retry_failed", "resume_runs"])
def test_retry_and_resume_refuse_while_records_are_in_flight(
    admin_client, run_factory, record_factory, action
):
    """A cancelled run whose process still finishes its batches (live leases) is not handed to
    a second executor (both would send, at twice the rate limit)."""
    run = finished_run(run_factory, record_factory, status=ImportRun.Status.CANCELLED)
    record_factory(run=run, status=Status.FAILED, error_code="unavailable", retryable=True)
    record_factory.create_batch(2, run=run, status=Status.PENDING)
    record_factory.create_batch(
        2, run=run, status=Status.IN_FLIGHT, claimed_by="cli", claimed_at=timezone.now()
    )
    response = post_action(admin_client, action, run)
    assert shown_messages(response) == [
        f"Run {run.pk} has 2 record(s) in flight: a process (the one cancelled, say) is still "
        f"sending them. Try again once they are written back (migration_status {run.pk}); if "
        "that process died, their leases expire 300 s after it last renewed them."
    ]
    run.refresh_from_db()
    assert run.status == ImportRun.Status.CANCELLED
    assert run.records.filter(status=Status.PENDING).count() == 2
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(
    ("status", "dry_run", "expected"),
    [
        (ImportRun.Status.COMPLETED_WITH_ERRORS, False, "completed with errors: nothing to resume"),
        (ImportRun.Status.ROLLED_BACK, False, "was rolled back: import the source again."),
        (ImportRun.Status.COMPLETED, True, "is a dry run: import the source again"),
    ],
)
def test_resume_refuses_finished_runs(
    admin_client, run_factory, record_factory, status, dry_run, expected
):
    run = finished_run(run_factory, record_factory, status=status, dry_run=dry_run)
    record_factory(run=run, status=Status.FAILED, error_code="unavailable", retryable=True)
    response = post_action(admin_client, "resume_runs", run)
    [message] = shown_messages(response)
    assert message.startswith(f"Run {run.pk} ") and expected in message
    assert ImportRun.objects.get(pk=run.pk).status == status
    assert not LogEntry.objects.exists()


def test_resume_refuses_a_cancelled_run_with_nothing_left(
    admin_client, run_factory, record_factory
):
    run = finished_run(run_factory, record_factory, status=ImportRun.Status.CANCELLED)
    record_factory(run=run, status=Status.FAILED, error_code="bad_request", retryable=False)
    response = post_action(admin_client, "resume_runs", run)
    assert shown_messages(response) == [
        f"Run {run.pk} has no pending record and no transient failure: nothing to resume."
    ]
    assert ImportRun.objects.get(pk=run.pk).status == ImportRun.Status.CANCELLED


def test_ledger_is_read_only(admin_client, run_with_records):
    record = run_with_records.records.first()
    assert admin_client.get(reverse("admin:migration_importrun_add")).status_code == 403
    for name, pk in (("importrecord", record.pk), ("importrun", run_with_records.pk)):
        url = reverse(f"admin:migration_{name}_delete", args=[pk])
        assert admin_client.get(url).status_code == 403


def test_run_pages_show_no_field_save_or_delete(admin_client, run_with_records):
    """Saving the run page changed done_at_resume (the rate and ETA baseline)."""
    url = reverse("admin:migration_importrun_change", args=[run_with_records.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert "/delete/" not in html
    assert 'name="done_at_resume"' not in html and "Done at resume" not in html
    assert admin_client.post(url, {"done_at_resume": "999"}).status_code == 403
    assert ImportRun.objects.get(pk=run_with_records.pk).done_at_resume == 0
    record = run_with_records.records.first()
    record_url = reverse("admin:migration_importrecord_change", args=[record.pk])
    assert 'name="_save"' not in admin_client.get(record_url).content.decode()


def test_view_only_user_sees_the_pages_and_only_the_download_action(viewer, run_with_records):
    response = viewer.get(reverse(RUNS))
    assert response.status_code == 200
    assert action_names(response) == ["", "download_failures"]
    url = reverse("admin:migration_importrun_change", args=[run_with_records.pk])
    assert viewer.get(url).status_code == 200
    viewer.post(reverse(RUNS), {"action": "cancel_runs", "_selected_action": [run_with_records.pk]})
    assert ImportRun.objects.get(pk=run_with_records.pk).status == ImportRun.Status.RUNNING


def test_operators_get_every_action(admin_client, run_with_records):
    assert action_names(admin_client.get(reverse(RUNS))) == [
        "",
        "retry_failed",
        "resume_runs",
        "cancel_runs",
        "verify_runs",
        "download_failures",
    ]


def test_run_is_short_in_lists(admin_client, run_factory, record_factory):
    """The full source in the run column pushed status and error off screen at 1,920 px."""
    long_source = ", ".join(
        f"{kind}=/srv/exports/2026-11-27/very/deep/folder/{kind}.csv"
        for kind in ("roles", "organizations", "users")
    )
    run = run_factory(source=long_source)
    record_factory(run=run, status=Status.FAILED, error_code="unavailable")
    assert str(run) == f"run {run.pk}"
    records = admin_client.get(reverse("admin:migration_importrecord_changelist"))
    assert "/srv/exports" not in records.content.decode()
    runs = admin_client.get(reverse(RUNS)).content.decode()
    assert "roles=roles.csv, organizations=organizations.csv, users=users.csv" in runs
    assert f'title="{long_source}"' in runs  # the whole source on hover


def error_choices(client, **params) -> list[str]:
    response = client.get(reverse("admin:migration_importrecord_changelist"), params)
    [spec] = [f for f in response.context["cl"].filter_specs if isinstance(f, ErrorCodeFilter)]
    return [code for code, _ in spec.lookup_choices]


def test_error_filter_lists_the_codes_of_the_selected_run(
    admin_client, run_factory, record_factory
):
    first, second = run_factory(), run_factory()
    record_factory(run=first, status=Status.FAILED, error_code="unavailable")
    record_factory(run=second, status=Status.FAILED, error_code="bad_request")
    record_factory(run=second, status=Status.INVALID, error_code="invalid_email")
    assert error_choices(admin_client) == ["bad_request", "invalid_email", "unavailable"]
    assert error_choices(admin_client, run__id__exact=first.pk) == ["unavailable"]
    assert error_choices(admin_client, run__id__exact=second.pk) == [
        "bad_request",
        "invalid_email",
    ]


def early_run(run_factory, record_factory, *, written: int, in_flight: int, seconds: float):
    """A run ``seconds`` into its execution: ``written`` records written back, ``in_flight``
    claimed, the rest of 1,500 pending."""
    run = run_factory(
        status=ImportRun.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=seconds),
        phase="users",
        checksum="c" * 64,
    )
    record_factory.create_batch(written, run=run, status=Status.SUCCEEDED, outcome="created")
    record_factory.create_batch(
        in_flight, run=run, status=Status.IN_FLIGHT, claimed_by="w", claimed_at=timezone.now()
    )
    record_factory.create_batch(1500 - written - in_flight, run=run, status=Status.PENDING)
    run.refresh_counts()
    return run


def test_rate_and_eta_say_estimating_while_batches_are_out(
    admin_client, run_factory, record_factory
):
    """22 written back while 800 were in flight showed 0.2/s and an ETA of hours while the run
    sent at 8/s."""
    run = early_run(run_factory, record_factory, written=22, in_flight=800, seconds=100)
    assert run.estimating and run.eta is None
    html = admin_client.get(reverse(RUNS)).content.decode()
    assert html.count("estimating…") == 2  # rate and ETA
    assert "1.5% done · 800 in flight" in html


def test_rate_and_eta_once_more_is_written_back_than_in_flight(run_factory, record_factory):
    run = early_run(run_factory, record_factory, written=800, in_flight=400, seconds=100)
    assert not run.estimating
    assert 7.9 <= run.throughput <= 8.0
    assert 85 <= run.eta.total_seconds() <= 90  # 300 pending and 400 in flight at 8/s


def test_verify_under_way_is_shown_and_not_started_twice(admin_client, run_factory, record_factory):
    """A verify with a sign of life within LEASE_SECONDS blocks a second one; once its
    process is gone (no sign of life since), the page says so."""
    run = finished_run(run_factory, record_factory)
    since = timezone.now() - timedelta(minutes=3)
    ImportRun.objects.filter(pk=run.pk).update(
        verifying_since=since, verify_seen_at=timezone.now(), verify_checked=200
    )
    response = post_action(admin_client, "verify_runs", run)
    assert shown_messages(response) == [
        f"Run {run.pk} is being verified since "
        f"{timezone.localtime(since):%Y-%m-%d %H:%M:%S} (200 record(s) checked so far): wait "
        "until it is done."
    ]
    assert not LogEntry.objects.exists()
    assert "verifying… (200 checked)" in admin_client.get(reverse(RUNS)).content.decode()
    page = reverse("admin:migration_importrun_change", args=[run.pk])
    assert "200 record(s) checked so far (never verified)" in (
        admin_client.get(page).content.decode()
    )
    with override_settings(MIGRATION={"LEASE_SECONDS": 60}):
        ImportRun.objects.filter(pk=run.pk).update(verify_seen_at=since)
        assert "stopped without finishing" in admin_client.get(page).content.decode()
