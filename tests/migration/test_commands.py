"""The small commands' contracts: --json everywhere and the shared exit codes (no Scalekit)."""

from __future__ import annotations

import csv
import json

import pytest

from migration.models import ImportRecord, ImportRun
from migration.reporting import EXIT_OK, EXIT_USAGE

Status = ImportRecord.Status


@pytest.fixture
def failed_run(run_factory, record_factory):
    run = run_factory(status=ImportRun.Status.COMPLETED_WITH_ERRORS)
    record_factory(run=run, status=Status.SUCCEEDED, outcome="created")
    record_factory(
        run=run, status=Status.FAILED, error_code="bad_request", last_error="=1+1", retryable=False
    )
    record_factory(run=run, status=Status.INVALID, error_code="invalid_email", last_error="no @")
    return run


def test_cancel_json_and_exit_codes(command, run_factory):
    running = run_factory(status=ImportRun.Status.RUNNING)
    first = command("migration_cancel", running.pk, "--json")
    assert first.code == EXIT_OK, first
    assert json.loads(first.out) == {
        "run": running.pk,
        "status": "cancelled",
        "cancelled_now": True,
    }
    again = command("migration_cancel", running.pk, "--json")  # idempotent
    assert again.code == EXIT_OK
    assert json.loads(again.out)["cancelled_now"] is False

    finished = run_factory(status=ImportRun.Status.COMPLETED)
    refused = command("migration_cancel", finished.pk, "--json")
    assert refused.code == EXIT_USAGE
    assert f"Run {finished.pk} is completed: nothing to cancel." in refused.err
    assert command("migration_cancel", 99999).code == EXIT_USAGE


def test_export_failures_as_json(command, failed_run):
    result = command("migration_export_failures", failed_run.pk, "--json")
    assert result.code == EXIT_OK, result
    data = json.loads(result.out)
    assert data["run"] == failed_run.pk
    assert [(r["status"], r["reason"], r["retryable"]) for r in data["failures"]] == [
        ("failed", "=1+1", False),  # JSON carries the value as stored
        ("invalid", "no @", False),
    ]


def test_export_failures_to_a_file_with_a_json_summary(command, failed_run, tmp_path):
    target = tmp_path / "failures.csv"
    result = command("migration_export_failures", failed_run.pk, "-o", target, "--json")
    assert result.code == EXIT_OK, result
    assert json.loads(result.out) == {"run": failed_run.pk, "rows": 2, "output": str(target)}
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["reason"] for r in rows] == ["'=1+1", "no @"]  # the CSV neutralises formulas
    unwritable = command("migration_export_failures", failed_run.pk, "-o", tmp_path / "no" / "x")
    assert unwritable.code == EXIT_USAGE and "Cannot write" in unwritable.err
