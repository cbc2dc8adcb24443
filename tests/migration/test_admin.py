from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from migration.models import ImportRecord, ImportRun

Status = ImportRecord.Status


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


def test_run_changelist_shows_progress_and_counts(admin_client, run_with_records):
    response = admin_client.get(reverse("admin:migration_importrun_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'title="3 succeeded"' in html and 'title="1 failed"' in html
    assert "80.0%" in html  # 4 of the 5 records to send are done


def test_run_change_page_has_the_counts_table(admin_client, run_with_records):
    response = admin_client.get(
        reverse("admin:migration_importrun_change", args=[run_with_records.pk])
    )
    assert response.status_code == 200
    assert "<th>created</th>" in response.content.decode()


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
    response = admin_client.post(
        reverse("admin:migration_importrun_changelist"),
        {"action": "cancel_runs", "_selected_action": [run_with_records.pk]},
        follow=True,
    )
    assert response.status_code == 200
    run_with_records.refresh_from_db()
    assert run_with_records.status == ImportRun.Status.CANCELLED
    entry = LogEntry.objects.get(object_id=str(run_with_records.pk))
    assert entry.user == admin_user and entry.get_change_message() == "Cancelled the run."


def test_download_failures_is_safe_csv_and_logged(admin_client, run_with_records):
    response = admin_client.post(
        reverse("admin:migration_importrun_changelist"),
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
    assert LogEntry.objects.filter(object_id=str(run_with_records.pk)).count() == 1


def test_retry_refuses_a_running_run(admin_client, run_with_records):
    admin_client.post(
        reverse("admin:migration_importrun_changelist"),
        {"action": "retry_failed", "_selected_action": [run_with_records.pk]},
    )
    assert run_with_records.records.filter(status=Status.FAILED).count() == 1
    assert not LogEntry.objects.exists()


def test_ledger_is_read_only(admin_client, run_with_records):
    record = run_with_records.records.first()
    assert admin_client.get(reverse("admin:migration_importrun_add")).status_code == 403
    assert (
        admin_client.get(
            reverse("admin:migration_importrecord_delete", args=[record.pk])
        ).status_code
        == 403
    )
