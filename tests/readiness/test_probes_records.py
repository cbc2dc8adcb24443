"""Kind R probes: the Scalekit reachability history and the migration app's import ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.test import modify_settings
from django.utils import timezone

from readiness.models import CheckResult, CheckRun
from readiness.registry import FAIL, PASS, SKIP, WARN

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

    def make_run(
        status="completed", *, verified=True, differences=0, failed=0, dry_run=False, records=None
    ):
        """A run and its records: ``failed`` failed ones, plus ``records`` ({status: count})."""
        finished = timezone.now() - timedelta(minutes=10)
        stopped = status not in ("pending", "running")
        run = ImportRun.objects.create(
            source="users.csv",
            status=status,
            dry_run=dry_run,
            finished_at=finished if stopped else None,
            started_at=finished - timedelta(minutes=5),
            verified_at=finished + timedelta(minutes=1) if verified else None,
            differences=differences if verified else None,
        )
        wanted = {"failed": failed, **(records or {})}
        for record_status, count in wanted.items():
            for n in range(count):
                ImportRecord.objects.create(
                    run=run,
                    kind="user",
                    key=f"{record_status}{n}@example.com",
                    status=record_status,
                    last_error="INVALID_ARGUMENT" if record_status == "failed" else "",
                )
        return run

    return make_run


class TestImportsVerified:
    @covers("readiness.E060", PASS)
    def test_all_runs_verified_clean(self, ledger):
        ledger(records={"succeeded": 2})
        ledger(records={"succeeded": 1})
        ledger(dry_run=True, verified=False)
        ledger(status="pending", dry_run=True, verified=False)
        ledger(status="rolled_back", verified=False)
        ledger(status="failed", verified=False, records={"pending": 3})  # sent nothing
        result = run_probe("readiness.E060")
        assert result.status == PASS, result.message
        assert "2 completed import run(s) verified with zero differences" in result.message

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

    def test_failed_half_done_import_fails_although_verified_clean(self, ledger):
        """verify only reads back succeeded records: a run that stopped part-way verifies with
        zero differences, but half the source never reached Scalekit."""
        ledger()
        half = ledger(status="failed", records={"succeeded": 2, "pending": 5})
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert (
            f"run {half.pk} failed part-way with 2 record(s) already in Scalekit: "
            "resume it or roll it back" in result.message
        )

    def test_cancelled_part_way(self, ledger):
        cancelled = ledger(status="cancelled", verified=False, records={"succeeded": 1})
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert f"run {cancelled.pk} was cancelled part-way" in result.message

    def test_pending_run_fails(self, ledger):
        ledger()
        pending = ledger(status="pending", verified=False)
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert f"run {pending.pk} is still pending" in result.message

    def test_completed_run_with_records_put_back(self, ledger):
        """Records retried from the admin go back to pending while the run still says completed."""
        run = ledger(records={"succeeded": 1, "pending": 2, "in_flight": 1})
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert f"run {run.pk} has 3 record(s) still pending or in flight" in result.message

    @covers("readiness.E060", WARN)
    def test_completed_with_errors_warns(self, ledger):
        run = ledger(status="completed_with_errors", failed=2, records={"succeeded": 3})
        result = run_probe("readiness.E060")
        assert result.status == WARN, result.message
        assert (
            f"run {run.pk} completed with 2 failed or invalid record(s) that are not in Scalekit"
            in result.message
        )

    def test_changed_after_verification(self, ledger):
        run = ledger()
        run.verified_at = run.finished_at - timedelta(minutes=1)
        run.save()
        assert "changed after its last verification" in run_probe("readiness.E060").message

    def test_nothing_imported(self, ledger):
        ledger(dry_run=True)
        result = run_probe("readiness.E060")
        assert result.status == FAIL
        assert "No completed import run yet" in result.message

    @covers("readiness.E060", SKIP)
    @covers("readiness.W061", SKIP)
    @modify_settings(INSTALLED_APPS={"remove": ["migration"]})
    def test_migration_app_missing_leaves_the_import_to_a_person(self, signer):
        """Nothing proves M04 without the ledger: its checks skip, M04 stays to do (an open
        blocker), and a person closes it by marking the import section not applicable with a
        reason, which a failing E060 refused."""
        from readiness import signoffs
        from readiness.models import ChecklistItem, ItemStatus
        from readiness.probes.migration import NO_LEDGER
        from readiness.registry import get_probe
        from readiness.runner import run_checks

        for probe_id in ("readiness.E060", "readiness.W061"):
            result = run_probe(probe_id)
            assert (result.status, result.message) == (SKIP, NO_LEDGER)
        run_checks([get_probe("readiness.E060"), get_probe("readiness.W061")])
        m04 = ChecklistItem.objects.select_related("section").get(key="M04")
        assert m04.status == ItemStatus.TODO
        signoffs.set_section_applicable(
            m04.section, signer, False, "Users were imported by the SSO provider's own sync."
        )
        m04.refresh_from_db()
        assert m04.status == ItemStatus.NOT_APPLICABLE


class TestFailedRecords:
    @covers("readiness.W061", PASS)
    def test_no_failed_records(self, ledger):
        ledger(failed=0)
        ledger(status="rolled_back", failed=2)
        ledger(dry_run=True, failed=2)
        assert run_probe("readiness.W061").status == PASS

    @covers("readiness.W061", FAIL)
    def test_failed_records_left(self, ledger):
        run = ledger(failed=2)
        cancelled = ledger(status="cancelled", failed=1)
        result = run_probe("readiness.W061")
        assert result.status == FAIL
        assert f"3 record(s) failed in import run(s) {run.pk}, {cancelled.pk}" in result.message


class TestAccessTokenLifetime:
    @staticmethod
    def logins(*lifetimes):
        from django.contrib.auth import get_user_model

        from scalekit_auth.models import ScalekitSession

        user = get_user_model().objects.create_user("ada")
        for index, lifetime in enumerate(lifetimes):
            ScalekitSession.objects.create(
                user=user, session_key=f"key{index}", access_token_lifetime=lifetime
            )

    @covers("readiness.W063", WARN)
    def test_no_login_yet(self):
        result = run_probe("readiness.W063")
        assert result.status == WARN and "No login" in result.message

    @covers("readiness.W063", PASS)
    def test_short_lived_tokens_pass(self):
        self.logins(300, 299, None)
        result = run_probe("readiness.W063")
        assert result.status == PASS, result.message
        assert result.evidence == {"logins": 2, "longest_s": 300, "limit_s": 900}

    @covers("readiness.W063", FAIL)
    def test_one_long_lived_token_fails(self, settings):
        settings.READINESS = {
            **getattr(settings, "READINESS", {}),
            "MAX_ACCESS_TOKEN_LIFETIME": 600,
        }
        self.logins(300, 3600)
        result = run_probe("readiness.W063")
        assert result.status == FAIL
        assert "up to 3600 s" in result.message and "limit is 600 s" in result.message
