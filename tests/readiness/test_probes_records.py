"""Kind R probes: the Scalekit reachability history and the migration app's import ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.test import modify_settings
from django.utils import timezone

from readiness.models import CheckResult, CheckRun
from readiness.registry import FAIL, PASS, WARN

from .helpers import covers, run_probe

pytestmark = pytest.mark.django_db


def network_history(*rows: tuple[str, float]) -> None:
    """Store past runs of the three Scalekit probes with the given outcome and latency."""
    start = timezone.now() - timedelta(hours=len(rows))
    for index, (status, latency) in enumerate(rows):
        run = CheckRun.objects.create(trigger="schedule", started_at=start + timedelta(hours=index))
        for probe_id in ("readiness.E054", "readiness.E055", "readiness.E056"):
            CheckResult.objects.create(
                run=run,
                probe_id=probe_id,
                title="t",
                kind="N",
                severity="blocker",
                status=status,
                message="m",
                evidence={"latency_ms": latency},
            )


class TestReachabilityHistory:
    @covers("readiness.W059", WARN)
    def test_no_history(self):
        result = run_probe("readiness.W059")
        assert result.status == WARN
        assert "No network probe has run yet" in result.message

    @covers("readiness.W059", PASS)
    def test_recent_probes_passed(self):
        network_history(*[("pass", 40.0)] * 4, ("pass", 120.0))
        result = run_probe("readiness.W059")
        assert result.status == PASS, result.message
        assert result.evidence == {"results": 15, "failures": 0, "p95_ms": 120.0}

    @covers("readiness.W059", FAIL)
    def test_recent_failure(self):
        network_history(("pass", 40.0), ("fail", 40.0), ("pass", 40.0))
        result = run_probe("readiness.W059")
        assert result.status == FAIL
        assert "3 of the last 9 Scalekit network probes failed" in result.message

    def test_old_failures_fall_out_of_the_window(self):
        network_history(("fail", 40.0), *[("pass", 40.0)] * 5)
        assert run_probe("readiness.W059").status == PASS

    def test_slow(self, settings):
        settings.READINESS = {"NETWORK_P95_MS": 100}
        network_history(("pass", 40.0), ("pass", 900.0))
        result = run_probe("readiness.W059")
        assert result.status == FAIL
        assert "p95 latency to Scalekit is 900 ms, above 100 ms" in result.message


@pytest.fixture
def ledger():
    ImportRun = apps.get_model("migration", "ImportRun")
    ImportRecord = apps.get_model("migration", "ImportRecord")

    def make_run(status="completed", *, verified=True, differences=0, failed=0, dry_run=False):
        finished = timezone.now() - timedelta(minutes=10)
        run = ImportRun.objects.create(
            source="users.csv",
            status=status,
            dry_run=dry_run,
            finished_at=finished,
            started_at=finished - timedelta(minutes=5),
            verified_at=finished + timedelta(minutes=1) if verified else None,
            differences=differences if verified else None,
        )
        for n in range(failed):
            ImportRecord.objects.create(
                run=run,
                kind="user",
                key=f"u{n}@example.com",
                status="failed",
                last_error="INVALID_ARGUMENT",
            )
        return run

    return make_run


class TestImportsVerified:
    @covers("readiness.E060", PASS)
    def test_all_runs_verified_clean(self, ledger):
        ledger()
        ledger(status="completed_with_errors")
        ledger(dry_run=True, verified=False)
        ledger(status="rolled_back", verified=False)
        result = run_probe("readiness.E060")
        assert result.status == PASS, result.message
        assert "2 import run(s) verified with zero differences" in result.message

    @covers("readiness.E060", FAIL)
    def test_unverified_and_different_runs(self, ledger):
        clean = ledger()
        unverified = ledger(verified=False)
        different = ledger(differences=3)
        running = ledger(status="running", verified=False)
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert f"run {unverified.pk} was never verified" in result.message
        assert f"run {different.pk} has 3 difference(s)" in result.message
        assert f"run {running.pk} is still running" in result.message
        assert f"run {clean.pk} " not in result.message

    def test_changed_after_verification(self, ledger):
        run = ledger()
        run.verified_at = run.finished_at - timedelta(minutes=1)
        run.save()
        assert "changed after its last verification" in run_probe("readiness.E060").message

    def test_nothing_imported(self):
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert "No import run yet" in result.message

    @modify_settings(INSTALLED_APPS={"remove": ["migration"]})
    def test_migration_app_missing(self):
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert result.message == "The migration app's ImportRun model is not installed."


class TestFailedRecords:
    @covers("readiness.W061", PASS)
    def test_no_failed_records(self, ledger):
        ledger(failed=0)
        ledger(status="rolled_back", failed=2)
        assert run_probe("readiness.W061").status == PASS

    @covers("readiness.W061", FAIL)
    def test_failed_records_left(self, ledger):
        run = ledger(failed=2)
        result = run_probe("readiness.W061")
        assert result.status == FAIL
        assert f"2 record(s) failed in import run(s) {run.pk}" in result.message
