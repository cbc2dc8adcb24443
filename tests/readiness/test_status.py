"""What a sign-off and a not-applicable section vouch for, and when they stop counting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from readiness import catalogue, signoffs
from readiness.models import ChecklistItem, CheckResult, CheckRun, ItemEvent, ItemStatus, Section
from readiness.runner import run_checks, select_probes
from readiness.status import refresh_item, section_progress
from readiness.sync import sync_catalogue

from .helpers import production, production_scalekit

pytestmark = pytest.mark.django_db


def get(key: str) -> ChecklistItem:
    return ChecklistItem.objects.select_related("section").get(key=key)


def store_result(key: str, probe_id: str, status: str, message: str) -> None:
    CheckResult.objects.create(
        run=CheckRun.objects.create(trigger="api"),
        item=get(key),
        probe_id=probe_id,
        title="t",
        kind="N",
        severity="blocker",
        status=status,
        message=message,
    )


class TestHybridSignOff:
    def test_covers_the_failures_it_saw_and_surfaces_new_ones(self, signer):
        with production(SECURE_SSL_REDIRECT=False):
            run_checks(select_probes(items=["A04"]), network=False)
            a04 = get("A04")
            assert a04.status == ItemStatus.FAILING
            signoff = signoffs.sign_off(a04, signer, notes="TLS redirect at the load balancer")
            assert signoff.covers == ["readiness.E034:security.W008"]
            # The same failure found again: the waiver still holds.
            report = run_checks(select_probes(items=["A04"]), network=False)
            assert get("A04").status == ItemStatus.SIGNED_OFF
            assert not report.failing_blockers
            # A failure the signer never saw (the public site stops redirecting).
            store_result(
                "A04",
                "readiness.E057",
                "fail",
                "http://app.example.com/ answered 200 without redirecting to https.",
            )
            a04 = get("A04")
            assert refresh_item(a04)
        assert a04.status == ItemStatus.FAILING
        event = a04.events.filter(action="status").first()
        assert event.message.startswith("sign-off stale: new failing check readiness.E057:")

    def test_numbers_in_a_message_are_no_new_failure(self, signer):
        store_result("A04", "readiness.E057", "fail", "No answer within 5 s (1203.4 ms).")
        signoffs.sign_off(get("A04"), signer, notes="site behind a VPN")
        store_result("A04", "readiness.E057", "fail", "No answer within 5 s (1187.0 ms).")
        a04 = get("A04")
        refresh_item(a04)
        assert a04.status == ItemStatus.SIGNED_OFF

    def test_signed_with_nothing_failing_covers_nothing(self, signer):
        signoff = signoffs.sign_off(get("A10"), signer, notes="dashboard screenshot")
        assert signoff.covers == []
        store_result("A10", "readiness.E006", "fail", "auth.example.com is a custom domain.")
        a10 = get("A10")
        refresh_item(a10)
        assert a10.status == ItemStatus.FAILING


class TestSectionNotApplicable:
    def test_refused_item_by_item(self, signer):
        with pytest.raises(signoffs.SignOffError, match="A04 is a blocker .* sign off a waiver"):
            signoffs.set_item_applicable(get("A04"), signer, False, "LB does it")
        with pytest.raises(signoffs.SignOffError, match="C01 is a blocker proven by automated"):
            signoffs.set_item_applicable(get("C01"), signer, False, "no SCIM")

    def test_covers_automated_blockers_while_nothing_changes(self, signer):
        """Marked while its checks pass (a failing blocker refuses it, see test_gate.py)."""
        scim = Section.objects.get(key="scim")
        with production():
            run_checks(select_probes(sections=["scim"]), network=False)
            assert get("C01").status == ItemStatus.PASSING
            signoffs.set_section_applicable(scim, signer, False, "We do not use SCIM.")
            assert get("C01").status == ItemStatus.NOT_APPLICABLE
            report = run_checks(select_probes(sections=["scim"]), network=False)
            assert not report.failing_blockers
            row = {r.section.key: r for r in section_progress("production")}["scim"]
            assert row.complete
        # Someone configures another webhook secret: the section's snapshot no longer holds.
        secret = "whsec_" + "c" * 32
        with production(
            env={"SCALEKIT_WEBHOOK_SECRET": secret},
            SCALEKIT_AUTH=production_scalekit(WEBHOOK_SECRET=secret),
        ):
            report = run_checks(select_probes(sections=["scim"]), network=False)
            c01 = get("C01")
            assert c01.status == ItemStatus.PASSING
            message = c01.events.filter(action="status").first().message
            assert "section not applicable no longer covers it: " in message
            assert "SCALEKIT_AUTH.WEBHOOK_SECRET changed" in message
            row = {r.section.key: r for r in section_progress("production")}["scim"]
            assert {i.key: i.status for i in row.items}["C01"] == ItemStatus.PASSING

    def test_quick_checks_not_applicable_still_run_their_blockers(self, signer):
        """Marking the Quick checks not applicable before any run covers no failure."""
        signoffs.set_section_applicable(
            Section.objects.get(key="quick"), signer, False, "not part of this test"
        )
        assert get("A01").status == ItemStatus.NOT_APPLICABLE
        with override_settings(DEBUG=True):
            report = run_checks(select_probes(items=["A01"]))
        assert get("A01").status == ItemStatus.FAILING
        assert [o.probe.id for o in report.failing_blockers] == ["readiness.E031"]
        row = {r.section.key: r for r in section_progress("production")}
        assert [i.key for i in row["quick"].open_blockers] == ["A01"]
        assert row["customization"].blocked_by[0].key == "quick"

    def test_manual_items_stay_covered(self, signer):
        signoffs.set_section_applicable(
            Section.objects.get(key="quick"), signer, False, "not part of this test"
        )
        with override_settings(SCALEKIT_AUTH={"CLIENT_SECRET": "sks_other"}):
            h01 = get("H01")
            refresh_item(h01)
        assert h01.status == ItemStatus.NOT_APPLICABLE


class TestSettingsDigests:
    def test_sync_adding_a_watch_keeps_the_signoff(self, signer):
        h01 = get("H01")
        signoff = signoffs.sign_off(h01, signer, notes="screenshot")
        assert set(signoff.digests) == set(catalogue.CREDENTIALS)
        watched = tuple(
            replace(
                section,
                items=tuple(
                    replace(i, watches=(*i.watches, "SESSION_COOKIE_AGE")) if i.key == "H01" else i
                    for i in section.items
                ),
            )
            for section in catalogue.SECTIONS
        )
        report = sync_catalogue(Section, ChecklistItem, ItemEvent, watched)
        assert report.items_updated == {"H01": ["watches"]}
        h01 = get("H01")
        refresh_item(h01)
        assert h01.status == ItemStatus.SIGNED_OFF
        with override_settings(SCALEKIT_AUTH={"CLIENT_SECRET": "sks_rotated"}):
            refresh_item(h01)
            assert h01.status == ItemStatus.TODO


class TestDataMigration:
    def historical(self):
        executor = MigrationExecutor(connection)
        state = executor.loader.project_state(("readiness", "0003_signoff_digests_and_covers"))
        return state.apps

    def test_existing_signoffs_get_digests_and_covers(self, signer):
        import importlib

        migration = importlib.import_module("readiness.migrations.0003_signoff_digests_and_covers")
        apps = self.historical()
        SignOff = apps.get_model("readiness", "SignOff")
        h01 = get("H01")
        paths = sorted(catalogue.CREDENTIALS)
        current = SignOff.objects.create(
            item_id=h01.pk, signer_name="x", fingerprint=migration._legacy_fingerprint(paths)
        )
        outdated = SignOff.objects.create(item_id=h01.pk, signer_name="y", fingerprint="0" * 16)
        store_result("A04", "readiness.E057", "fail", "http:// answered 200.")
        waiver = SignOff.objects.create(item_id=get("A04").pk, signer_name="z", fingerprint="")
        with override_settings(SILENCED_SYSTEM_CHECKS=["security.W008"]):
            h05 = SignOff.objects.create(item_id=get("H05").pk, signer_name="w", fingerprint="")
            migration.convert_signoffs(apps, None)
        current.refresh_from_db()
        outdated.refresh_from_db()
        waiver.refresh_from_db()
        h05.refresh_from_db()
        assert set(current.digests) == set(paths) and "stale" not in str(current.digests)
        assert outdated.digests == dict.fromkeys(paths, migration.STALE)
        assert len(waiver.covers) == 1 and waiver.covers[0].startswith("readiness.E057:")
        assert h05.covers == ["security.W008"]
