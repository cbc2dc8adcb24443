"""One rule for the dashboard and the CI gate: what makes a blocker item failing, and what may hide
it (a not-applicable section, a skip, a waiver, a stale snapshot)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from readiness import signoffs
from readiness.dashboard import changes_since_previous
from readiness.models import ChecklistItem, CheckResult, CheckRun, ItemStatus, Section
from readiness.runner import run_checks, select_probes
from readiness.signoffs import SignOffError
from readiness.status import latest_results, refresh_item, section_progress

from .helpers import production

pytestmark = pytest.mark.django_db

#: Nothing listens on port 9: the network probes of the public site fail at once.
UNREACHABLE = "https://127.0.0.1:9"


def get(key: str) -> ChecklistItem:
    return ChecklistItem.objects.select_related("section").get(key=key)


def gate(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("readiness_check", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue()
    return 0, out.getvalue()


def open_blockers(section_key: str) -> list[str]:
    row = {r.section.key: r for r in section_progress()}[section_key]
    return [i.key for i in row.open_blockers]


class TestSectionNotApplicable:
    """Finding 1: a not-applicable section never hides a failing automated blocker."""

    def test_refused_while_an_automated_blocker_fails(self, signer):
        quick = Section.objects.get(key="quick")
        with override_settings(DEBUG=True):
            run_checks(select_probes(items=["A01"]), network=False)
            assert get("A01").status == ItemStatus.FAILING
            with pytest.raises(
                SignOffError,
                match=r"Section 'Quick checks' cannot be marked not applicable while its "
                r"automated blockers fail: A01 \(E031\)\. Fix what their checks report",
            ):
                signoffs.set_section_applicable(quick, signer, False, "n/a")
            quick.refresh_from_db()
            assert not quick.not_applicable and quick.na_snapshot == {}
            assert get("A01").status == ItemStatus.FAILING
            code, _ = gate("--section", "quick", "--no-network")
        assert code == 1

    def test_covers_passing_blockers_until_one_fails(self, signer):
        scim = Section.objects.get(key="scim")
        with production():
            run_checks(select_probes(sections=["scim"]), network=False)
            assert get("C01").status == ItemStatus.PASSING
            signoffs.set_section_applicable(scim, signer, False, "We do not use SCIM.")
            assert get("C01").status == ItemStatus.NOT_APPLICABLE
            assert not run_checks(select_probes(sections=["scim"]), network=False).failing_blockers
            assert open_blockers("scim") == []
        # Same settings, but the secret no longer comes from the environment: a failure.
        with production(env={"SCALEKIT_WEBHOOK_SECRET": None}):
            report = run_checks(select_probes(sections=["scim"]), network=False)
        c01 = get("C01")
        assert c01.status == ItemStatus.FAILING
        assert [o.probe.id for o in report.failing_blockers] == ["readiness.E016"]
        assert (
            c01.events.filter(action="status")
            .first()
            .message.startswith(
                f"check run #{report.run.pk}: section not applicable no longer covers it: "
                "failing check readiness.E016:"
            )
        )
        assert open_blockers("scim") == ["C01"]

    def test_revoking_a_waiver_under_a_not_applicable_section_fails_the_item(self, signer):
        with production(SECURE_SSL_REDIRECT=False):
            run_checks(select_probes(items=["A04"]), network=False)
            assert get("A04").status == ItemStatus.FAILING
            signoffs.sign_off(get("A04"), signer, notes="TLS redirect at the load balancer")
            signoffs.set_section_applicable(
                Section.objects.get(key="quick"), signer, False, "not part of this test"
            )
            assert get("A04").status == ItemStatus.NOT_APPLICABLE
            signoffs.revoke_latest(get("A04"), signer, "the load balancer no longer redirects")
            assert get("A04").status == ItemStatus.FAILING
            assert open_blockers("quick") == ["A04"]


class TestSkips:
    """Finding 2: a probe a run did not run keeps its earlier real result."""

    def test_run_without_network_keeps_the_network_failure(self):
        readiness = {"HEALTH_URL_NAME": "admin:index", "PUBLIC_URL": UNREACHABLE}
        with production(READINESS=readiness):
            run_checks(select_probes(items=["A04"]), network=True)
            assert get("A04").status == ItemStatus.FAILING
            report = run_checks(select_probes(items=["A04"]), network=False)
        a04 = get("A04")
        assert a04.status == ItemStatus.FAILING and "[E057]" in a04.last_message
        [e057] = [o for o in report.outcomes if o.probe.id == "readiness.E057"]
        assert (e057.status, e057.previous, e057.changed) == ("skip", "fail", False)
        assert not report.changes
        assert CheckResult.objects.filter(
            run=report.run, probe_id="readiness.E057"
        ).get().status == ("skip")
        assert "readiness.E057" not in [c.probe_id for c in changes_since_previous(report.run)]

    def test_dashboard_compares_a_network_probe_with_its_last_real_run(self):
        readiness = {"HEALTH_URL_NAME": "admin:index", "PUBLIC_URL": UNREACHABLE}
        with production(READINESS=readiness):
            run_checks(select_probes(items=["A04"]), network=True)
            run_checks(select_probes(items=["A04"]), network=False)
            again = run_checks(select_probes(items=["A04"]), network=True)
        changed = [c.probe_id for c in changes_since_previous(again.run)]
        assert "readiness.E057" not in changed  # fail, (not run), fail: nothing changed

    def test_never_run_network_probe_shows_its_skip(self):
        run_checks(select_probes(items=["N01"]), network=False)
        n01 = get("N01")
        assert (n01.status, n01.last_outcome) == (ItemStatus.TODO, "skip")
        assert [r.status for r in latest_results(n01)] == ["skip"]

    def test_probe_that_skips_itself_replaces_its_failure(self):
        """A skip the probe decided (nothing to check) is a real result, not a run that did not
        look: it replaces an earlier failure."""
        with production(READINESS={"HEALTH_URL_NAME": "admin:index", "PUBLIC_URL": UNREACHABLE}):
            run_checks(select_probes(items=["A04"]), network=True)
        with production():
            run_checks(select_probes(items=["A04"]), network=True)
        a04 = get("A04")
        assert a04.status == ItemStatus.PASSING
        assert {r.probe_id: r.status for r in latest_results(a04)}["readiness.E057"] == "skip"

    def test_a_long_history_forgets_no_probe(self):
        """E057 ran once, long ago; 250 later runs checked only E034."""
        a04 = get("A04")
        with production(READINESS={"HEALTH_URL_NAME": "admin:index", "PUBLIC_URL": UNREACHABLE}):
            run_checks(select_probes(items=["A04"]), network=True)
        later = timezone.now() + timedelta(minutes=1)
        runs = CheckRun.objects.bulk_create(
            [
                CheckRun(trigger="schedule", started_at=later + timedelta(hours=n))
                for n in range(250)
            ]
        )
        CheckResult.objects.bulk_create(
            [
                CheckResult(
                    run=run,
                    item=a04,
                    probe_id="readiness.E034",
                    title="t",
                    kind="D",
                    severity="blocker",
                    status="pass",
                    message="SecurityMiddleware is installed and SECURE_SSL_REDIRECT is on.",
                )
                for run in runs
            ]
        )
        refresh_item(a04)
        assert a04.status == ItemStatus.FAILING and "[E057]" in a04.last_message


class TestAdvisoryProbes:
    """Finding 3: a W probe advises; on a blocker item its failure is a warning, on the dashboard
    and in the gate alike."""

    def test_failing_w_probe_warns_a_blocker_item(self):
        readiness = {"HEALTH_URL_NAME": "admin:index", "PUBLIC_URL": UNREACHABLE}
        with production(READINESS=readiness):
            code, output = gate("--item", "A06", "--json")
            a06 = get("A06")
            assert (a06.status, a06.last_outcome) == (ItemStatus.PASSING, "warn")
            assert "[W058]" in a06.last_message
            assert code == 0 and "A06" not in open_blockers("quick")
            code, _ = gate("--item", "A06", "--fail-level", "advisory")
            assert code == 1
        with production(READINESS=readiness, SECURE_HSTS_INCLUDE_SUBDOMAINS=False):
            code, _ = gate("--item", "A06")
        assert code == 1 and get("A06").status == ItemStatus.FAILING


class TestWaivers:
    """Finding 5: a waiver counts with the H05 sign-off as it is now, not as it was at the run."""

    def test_signing_and_revoking_h05_count_without_a_run(self, signer):
        with override_settings(DEBUG=True, SILENCED_SYSTEM_CHECKS=["security.W018"]):
            run_checks(select_probes(items=["A01"]), network=False)
            a01 = get("A01")
            assert (a01.status, a01.last_outcome) == (ItemStatus.FAILING, "waived")
            signoff = signoffs.sign_off(get("H05"), signer, notes="debug box")
            a01 = get("A01")
            assert (a01.status, a01.last_outcome) == (ItemStatus.PASSING, "warn")
            assert a01.last_message.startswith(
                f"[E031] Waiver signed off in H05 by Grace Hopper on {signoff.signed_at:%Y-%m-%d}"
            )
            assert CheckResult.objects.get(probe_id="readiness.E031").status == "waived"
            signoffs.revoke_latest(get("H05"), signer, "not justified")
            a01 = get("A01")
            assert (a01.status, a01.last_outcome) == (ItemStatus.FAILING, "waived")
            event = a01.events.filter(action="status").first()
            assert event.message == f"waiver sign-off #{signoff.pk} in H05 revoked: not justified"
            assert event.actor == signer

    def test_stale_h05_sign_off_counts_at_the_next_refresh(self, signer):
        with override_settings(DEBUG=True, SILENCED_SYSTEM_CHECKS=["security.W018"]):
            signoffs.sign_off(get("H05"), signer, notes="debug box")
            report = run_checks(select_probes(items=["A01"]), network=False)
            assert report.outcomes[0].status == "warn" and not report.failing_blockers
            assert get("A01").status == ItemStatus.PASSING
        silenced = ["security.W018", "security.W008"]
        with override_settings(DEBUG=True, SILENCED_SYSTEM_CHECKS=silenced):
            a01 = get("A01")
            refresh_item(a01)
        assert a01.status == ItemStatus.FAILING


class TestNoStore:
    """Finding 6: without storing, the gate judges the item statuses this run makes."""

    def test_no_store_reports_what_a_stored_run_would(self, signer):
        with production():
            run_checks(select_probes(sections=["scim"]), network=False)
            signoffs.set_section_applicable(
                Section.objects.get(key="scim"), signer, False, "no SCIM"
            )
        with production(env={"SCALEKIT_WEBHOOK_SECRET": None}):
            runs = CheckRun.objects.count()
            report = run_checks(select_probes(items=["C01"]), network=False, store=False)
            assert [o.probe.id for o in report.failing_blockers] == ["readiness.E016"]
            assert report.outcomes[0].item_status == ItemStatus.FAILING
            assert CheckRun.objects.count() == runs
            assert get("C01").status == ItemStatus.NOT_APPLICABLE
            code, _ = gate("--item", "C01", "--no-network", "--no-store")
            assert code == 1
            stored = run_checks(select_probes(items=["C01"]), network=False)
        assert [o.probe.id for o in stored.failing_blockers] == ["readiness.E016"]

    def test_no_store_without_network_keeps_the_stored_network_failure(self):
        readiness = {"HEALTH_URL_NAME": "admin:index", "PUBLIC_URL": UNREACHABLE}
        with production(READINESS=readiness):
            run_checks(select_probes(items=["A04"]), network=True)
            run_checks(select_probes(items=["A04"]), network=False)
            report = run_checks(select_probes(items=["A04"]), network=False, store=False)
        assert {o.item_status for o in report.outcomes} == {ItemStatus.FAILING}
        assert [o.probe.id for o in report.failing_blockers] == []  # E034 passes, E057 did not run
