"""The runner: results stored, items refreshed with history, changes since the last run."""

from __future__ import annotations

import pytest
from django.test import override_settings

from readiness.dashboard import changes_since_previous
from readiness.models import ChecklistItem, CheckResult, CheckRun, ItemStatus
from readiness.runner import run_checks, select_probes

from .helpers import production

pytestmark = pytest.mark.django_db


def test_run_stores_results_and_refreshes_items():
    probes = select_probes(items=["B06", "B07"])
    with override_settings(SESSION_COOKIE_AGE=1209600):
        report = run_checks(probes, trigger=CheckRun.Trigger.COMMAND)
    run = report.run
    assert run.trigger == "command" and run.finished_at is not None
    assert run.counts["fail"] == 1 and run.counts["pass"] == 1
    assert run.failing_blockers == 1
    assert sorted(run.results.values_list("probe_id", "status")) == [
        ("readiness.E011", "fail"),
        ("readiness.E012", "pass"),
    ]
    b06 = ChecklistItem.objects.get(key="B06")
    assert (b06.status, b06.last_outcome) == (ItemStatus.FAILING, "fail")
    event = b06.events.get(action="status")
    assert (event.from_status, event.to_status) == ("todo", "failing")
    assert event.message.startswith(f"check run #{run.pk}: [E011] SESSION_COOKIE_AGE is 1209600")
    assert ChecklistItem.objects.get(key="B07").status == ItemStatus.PASSING
    assert [o.probe.id for o in report.failing_blockers] == ["readiness.E011"]


def test_changes_since_the_previous_run():
    probes = select_probes(items=["B06"])
    with override_settings(SESSION_COOKIE_AGE=1209600):
        run_checks(probes)
    with override_settings(SESSION_COOKIE_AGE=3600):
        report = run_checks(probes)
    [change] = report.changes
    assert (change.probe.id, change.previous, change.status) == ("readiness.E011", "fail", "pass")
    [stored] = changes_since_previous(report.run)
    assert (stored.before, stored.after, stored.worse) == ("fail", "pass", False)
    b06 = ChecklistItem.objects.get(key="B06")
    assert b06.status == ItemStatus.PASSING
    assert list(b06.events.filter(action="status").values_list("to_status", flat=True)) == [
        "passing",
        "failing",
    ]


def test_worst_probe_decides_the_item():
    """A06 has a deploy probe and a settings probe; one failure fails the item."""
    with production(SECURE_HSTS_SECONDS=3600):
        run_checks(select_probes(items=["A06"]), network=False)
    a06 = ChecklistItem.objects.get(key="A06")
    assert a06.status == ItemStatus.PASSING and a06.last_outcome == "warn"
    with production(SECURE_HSTS_INCLUDE_SUBDOMAINS=False):
        run_checks(select_probes(items=["A06"]), network=False)
    a06.refresh_from_db()
    assert a06.status == ItemStatus.FAILING and "security.W005" in a06.last_message


def test_no_store_writes_nothing():
    report = run_checks(select_probes(items=["B07"]), store=False)
    assert report.run is None and report.outcomes[0].status == "pass"
    assert not CheckRun.objects.exists() and not CheckResult.objects.exists()


def test_no_network_skips_network_probes():
    report = run_checks(select_probes(kinds=["N"]), network=False)
    assert {o.status for o in report.outcomes} == {"skip"}
    assert not report.failing_blockers


def test_select_probes_filters():
    assert {p.item for p in select_probes(sections=["scim"])} == {"C01", "C02", "C03"}
    assert [p.id for p in select_probes(ids=["readiness.E001"])] == ["readiness.E001"]
    assert all(p.kind == "D" for p in select_probes(kinds=["D"]))


def test_automated_blocker_cannot_be_marked_not_applicable(signer):
    from readiness import signoffs

    b06 = ChecklistItem.objects.get(key="B06")
    with pytest.raises(signoffs.SignOffError, match="B06 is a blocker proven by automated checks"):
        signoffs.set_item_applicable(b06, signer, False, "sessions are capped by the SSO proxy")
    b06.refresh_from_db()
    assert not b06.not_applicable


def test_automated_blocker_marked_not_applicable_before_the_rule_counts_again():
    """A flag set before automated blockers were refused is no waiver."""
    ChecklistItem.objects.filter(key="B06").update(not_applicable=True, na_reason="legacy")
    with override_settings(SESSION_COOKIE_AGE=1209600):
        report = run_checks(select_probes(items=["B06"]))
    assert report.outcomes[0].item_status == ItemStatus.FAILING
    assert [o.probe.id for o in report.failing_blockers] == ["readiness.E011"]


def test_advisory_item_not_applicable_is_no_failing_blocker(signer):
    from readiness import signoffs

    signoffs.set_item_applicable(
        ChecklistItem.objects.get(key="B05"), signer, False, "the cookie name is fixed by the CDN"
    )
    with override_settings(SESSION_COOKIE_NAME="sessionid"):
        report = run_checks(select_probes(items=["B05"]))
    assert report.outcomes[0].status == "warn"
    assert report.outcomes[0].item_status == ItemStatus.NOT_APPLICABLE


def test_run_writes_last_checked_at_of_the_probed_items():
    assert ChecklistItem.objects.get(key="B06").last_checked_at is None
    report = run_checks(select_probes(items=["B06"]))
    assert ChecklistItem.objects.get(key="B06").last_checked_at == report.run.started_at
    assert ChecklistItem.objects.get(key="B07").last_checked_at is None


class TestSilencedChecks:
    """A silenced check counts against its item until an active H05 sign-off covers it."""

    def test_waiver_accepted_once_h05_signs_it_off(self, signer):
        from readiness import signoffs

        silenced = {"SECURE_SSL_REDIRECT": False, "SILENCED_SYSTEM_CHECKS": ["security.W008"]}
        with production(**silenced):
            report = run_checks(select_probes(items=["A04"]), network=False)
            [e034] = [o for o in report.outcomes if o.probe.id == "readiness.E034"]
            assert e034.status == "waived" and "sign off H05" in e034.result.hint
            assert e034.is_failing_blocker
            h05 = ChecklistItem.objects.select_related("section").get(key="H05")
            signoff = signoffs.sign_off(h05, signer, notes="TLS redirect at the load balancer")
            assert signoff.covers == ["security.W008"]
            report = run_checks(select_probes(items=["A04"]), network=False)
            [e034] = [o for o in report.outcomes if o.probe.id == "readiness.E034"]
            assert e034.status == "warn"
            assert e034.result.message.startswith(
                f"Waiver signed off in H05 by Grace Hopper on {signoff.signed_at:%Y-%m-%d} "
                f"(sign-off #{signoff.pk}): Silenced in SILENCED_SYSTEM_CHECKS: security.W008"
            )
            assert not report.failing_blockers
            assert ChecklistItem.objects.get(key="A04").status == ItemStatus.PASSING
        # One more silenced check: H05's sign-off is stale and both waivers count again.
        more = {**silenced, "SILENCED_SYSTEM_CHECKS": ["security.W008", "security.W004"]}
        with production(**more, SECURE_HSTS_SECONDS=0):
            report = run_checks(select_probes(items=["A04", "A06"]), network=False)
            waived = {o.probe.id for o in report.outcomes if o.status == "waived"}
            assert waived == {"readiness.E034", "readiness.E035"}
            assert ChecklistItem.objects.get(key="H05").status == ItemStatus.TODO

    def test_silenced_readiness_probe(self, signer):
        from readiness import signoffs

        overrides = {"SESSION_COOKIE_AGE": 1209600, "SILENCED_SYSTEM_CHECKS": ["readiness.E011"]}
        with production(**overrides):
            assert run_checks(select_probes(items=["B06"])).failing_blockers
            h05 = ChecklistItem.objects.select_related("section").get(key="H05")
            signoffs.sign_off(h05, signer, notes="sessions capped by the SSO proxy")
            report = run_checks(select_probes(items=["B06"]))
        assert report.outcomes[0].status == "warn" and not report.failing_blockers
        assert ChecklistItem.objects.get(key="B06").status == ItemStatus.PASSING


def test_custom_domain_is_confirmed_by_signing_off_a10(signer):
    from readiness import signoffs

    from .helpers import production_scalekit

    custom = production_scalekit(ENVIRONMENT_URL="https://auth.acme.com")
    with production(SCALEKIT_AUTH=custom):
        report = run_checks(select_probes(items=["A10"]))
        assert [o.probe.id for o in report.failing_blockers] == ["readiness.E006"]
        a10 = ChecklistItem.objects.select_related("section").get(key="A10")
        signoffs.sign_off(a10, signer, notes="auth.acme.com is the production environment's CNAME")
        report = run_checks(select_probes(items=["A10"]))
    assert report.outcomes[0].status == "fail" and not report.failing_blockers
    assert ChecklistItem.objects.get(key="A10").status == ItemStatus.SIGNED_OFF
