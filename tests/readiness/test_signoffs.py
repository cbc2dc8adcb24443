"""The sign-off flow: who may sign what, when, with what evidence; revocation, staleness, expiry,
not-applicable with a reason, blocking sections, and the append-only history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.test import override_settings
from django.utils import timezone

from readiness import signoffs
from readiness.models import (
    AppendOnlyError,
    ChecklistItem,
    CheckResult,
    CheckRun,
    ItemEvent,
    ItemStatus,
    Section,
    SignOff,
)
from readiness.signoffs import SignOffError
from readiness.status import refresh_item, section_progress

pytestmark = pytest.mark.django_db


def sign(item, user, **kwargs):
    kwargs.setdefault("evidence_url", "https://wiki.example.com/evidence")
    return signoffs.sign_off(item, user, **kwargs)


def complete(section_key: str, user) -> None:
    """Get a section out of the way by marking it not applicable: only before its checks ran (a
    failing automated blocker refuses it)."""
    signoffs.set_section_applicable(
        Section.objects.get(key=section_key), user, False, "not part of this test"
    )


class TestSignOff:
    def test_manual_item_signed_off_with_history_and_log(self, item, signer):
        h01 = item("H01")
        signoff = sign(
            h01,
            signer,
            environment="production",
            release="v1.4.2",
            notes="dashboard screenshot attached",
        )
        h01.refresh_from_db()
        assert h01.status == ItemStatus.SIGNED_OFF
        assert (h01.signed_off_by, h01.signed_off_at) == (signer, signoff.signed_at)
        assert signoff.signer_name == "Grace Hopper"
        assert signoff.signer_role == "Eng lead"  # from the catalogue
        assert signoff.fingerprint
        history = list(
            h01.events.order_by("created_at", "pk").values_list(
                "action", "from_status", "to_status"
            )
        )
        assert history == [
            ("created", "", "todo"),
            ("signed_off", "todo", "todo"),
            ("status", "todo", "signed_off"),
        ]
        log = LogEntry.objects.get(object_id=str(h01.pk))
        assert log.user == signer and f"sign-off #{signoff.pk}" in log.get_change_message()

    def test_automated_item_cannot_be_ticked(self, item, signer):
        with pytest.raises(SignOffError, match="A01 is proven by its automated checks only"):
            sign(item("A01"), signer)
        assert not SignOff.objects.exists()

    def test_permission_needed(self, item, viewer):
        with pytest.raises(SignOffError, match="the readiness.sign_off_item permission is needed"):
            sign(item("H01"), viewer)

    def test_evidence_needed(self, item, signer):
        with pytest.raises(SignOffError, match="H04 needs evidence to be signed off"):
            signoffs.sign_off(item("H04"), signer)

    def test_bad_evidence_link(self, item, signer):
        with pytest.raises(SignOffError, match="'not a url' is not a valid URL"):
            signoffs.sign_off(item("H04"), signer, evidence_url="not a url")

    def test_earlier_section_blocks_later_ones(self, item, signer):
        with pytest.raises(SignOffError) as error:
            sign(item("H06"), signer)
        assert "section 'Quick checks' comes first and has open blockers (A01, A02" in str(
            error.value
        )
        complete("quick", signer)
        sign(item("H06"), signer)
        assert item("H06").status == ItemStatus.SIGNED_OFF

    def test_migration_phases_block_in_order(self, item, signer):
        with pytest.raises(SignOffError, match="'Phase 1: audit and export' comes first"):
            sign(item("M07"), signer)
        for key in ("M01", "M02", "M03"):
            sign(item(key), signer)
        with pytest.raises(SignOffError, match="'Phase 2: import' comes first .*M04"):
            sign(item("M07"), signer)

    def test_hybrid_waiver_turns_a_failing_item_signed_off(self, item, signer):
        a04 = item("A04")
        run = CheckRun.objects.create(trigger="api")
        CheckResult.objects.create(
            run=run,
            item=a04,
            probe_id="readiness.E034",
            title="t",
            kind="D",
            severity="blocker",
            status="fail",
            message="security.W008",
        )
        refresh_item(a04)
        assert a04.status == ItemStatus.FAILING
        sign(a04, signer, notes="TLS redirect happens at the load balancer")
        a04.refresh_from_db()
        assert a04.status == ItemStatus.SIGNED_OFF
        assert a04.last_outcome == "fail"


class TestRevocationAndLapses:
    def test_revoke(self, item, signer):
        h01 = item("H01")
        signoff = sign(h01, signer)
        with pytest.raises(SignOffError, match="Say why"):
            signoffs.revoke(signoff, signer, "  ")
        signoffs.revoke_latest(h01, signer, "secret rotated")
        h01.refresh_from_db()
        assert h01.status == ItemStatus.TODO and h01.signed_off_by is None
        assert signoff.revocation.reason == "secret rotated"
        assert h01.events.filter(action="revoked", message__contains="secret rotated").exists()
        with pytest.raises(SignOffError, match="already revoked"):
            signoffs.revoke(signoff, signer, "again")
        with pytest.raises(SignOffError, match="H01 has no sign-off to revoke"):
            signoffs.revoke_latest(h01, signer, "again")

    def test_stale_when_watched_settings_change(self, item, signer, settings):
        h01 = item("H01")
        sign(h01, signer)
        h01.refresh_from_db()
        settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CLIENT_SECRET": "rotated-secret"}
        assert refresh_item(h01)
        assert h01.status == ItemStatus.TODO
        assert h01.events.filter(
            action="status", message="sign-off stale: SCALEKIT_AUTH.CLIENT_SECRET changed"
        ).exists()
        assert "rotated-secret" not in str(list(h01.events.values()))

    def test_unrelated_settings_do_not_stale(self, item, signer, settings):
        h01 = item("H01")
        sign(h01, signer)
        h01.refresh_from_db()
        settings.SESSION_COOKIE_AGE = 60
        assert not refresh_item(h01)
        assert h01.status == ItemStatus.SIGNED_OFF

    def test_expired(self, item, signer):
        h04 = item("H04")
        sign(h04, signer, expires_at=timezone.now() - timedelta(seconds=1))
        h04.refresh_from_db()
        assert h04.status == ItemStatus.TODO


class TestApplicability:
    def test_item_not_applicable_needs_a_reason(self, item, signer):
        h21 = item("H21")
        with pytest.raises(SignOffError, match="Say why H21 does not apply"):
            signoffs.set_item_applicable(h21, signer, False, "")
        signoffs.set_item_applicable(h21, signer, False, "We do not offer MCP.")
        h21.refresh_from_db()
        assert (h21.status, h21.na_reason) == (ItemStatus.NOT_APPLICABLE, "We do not offer MCP.")
        with pytest.raises(SignOffError, match="H21 is marked not applicable"):
            sign(h21, signer)
        signoffs.set_item_applicable(h21, signer, True)
        h21.refresh_from_db()
        assert h21.status == ItemStatus.TODO and h21.na_reason == ""
        actions = list(h21.events.values_list("action", flat=True))
        assert ItemEvent.Action.NOT_APPLICABLE in actions and ItemEvent.Action.APPLICABLE in actions

    def test_section_not_applicable_unblocks_the_next(self, signer):
        progress = {row.section.key: row for row in section_progress("production")}
        assert progress["customization"].blocked_by[0].key == "quick"
        complete("quick", signer)
        progress = {row.section.key: row for row in section_progress("production")}
        assert progress["quick"].complete and progress["quick"].percent == 100
        assert progress["customization"].blocked_by == []
        assert set(
            ChecklistItem.objects.filter(section__key="quick").values_list("status", flat=True)
        ) == {ItemStatus.NOT_APPLICABLE}

    def test_permission_needed(self, item, viewer):
        with pytest.raises(SignOffError, match="readiness.mark_not_applicable"):
            signoffs.set_item_applicable(item("H21"), viewer, False, "no")


class TestAppendOnly:
    def test_signoff_cannot_be_edited_or_deleted(self, item, signer):
        signoff = sign(item("H01"), signer)
        signoff.notes = "changed"
        with pytest.raises(AppendOnlyError, match="append-only"):
            signoff.save()
        with pytest.raises(AppendOnlyError):
            signoff.delete()
        with pytest.raises(AppendOnlyError):
            SignOff.objects.filter(pk=signoff.pk).update(notes="x")
        with pytest.raises(AppendOnlyError):
            SignOff.objects.all().delete()

    def test_history_cannot_be_rewritten(self, item):
        event = item("H01").events.get()
        with pytest.raises(AppendOnlyError):
            ItemEvent.objects.filter(pk=event.pk).update(message="rewritten")
        with pytest.raises(AppendOnlyError):
            event.delete()


def test_signoff_copies_the_evidence_it_relies_on(item, signer):
    h04 = item("H04")
    h04.evidence_text = "SOP in the wiki, access review INFRA-42"
    h04.evidence_url = "https://wiki.example.com/sop"
    h04.save()
    signoff = signoffs.sign_off(h04, signer)
    h04.evidence_text = "changed later"
    h04.evidence_url = ""
    h04.save()
    signoff = SignOff.objects.get(pk=signoff.pk)
    assert signoff.evidence_text == "SOP in the wiki, access review INFRA-42"
    assert signoff.evidence_url == "https://wiki.example.com/sop"


@override_settings(SCALEKIT_AUTH={"CLIENT_SECRET": "sks_abc"})
def test_signoff_digests_hide_the_secret(item, signer):
    """The stored digest of the secret is keyed: it matches only with SECRET_KEY at hand."""
    signoff = sign(item("H01"), signer)
    digest = signoff.digests["SCALEKIT_AUTH.CLIENT_SECRET"]
    assert digest.startswith("h:") and "sks_abc" not in str(signoff.digests)
    with override_settings(SECRET_KEY="another-" + "k" * 60, SECRET_KEY_FALLBACKS=[]):
        h01 = item("H01")
        refresh_item(h01)
        assert h01.status == ItemStatus.TODO
