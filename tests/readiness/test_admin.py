"""The readiness admin: dashboard, run button and action, sign-off pages, export, history."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from readiness import signoffs
from readiness.admin import OWNER_INVALID, OWNER_PAGE_SIZE
from readiness.models import (
    ChecklistItem,
    CheckRun,
    ItemEvent,
    ItemStatus,
    Section,
    SignOff,
    SignOffRevocation,
)
from readiness.runner import run_checks, select_probes

from .conftest import SIGNER_PERMS
from .factories import StaffFactory, UserFactory
from .helpers import CLIENT_SECRET, production

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def admin_client_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def item_url(name: str, key: str) -> str:
    return reverse(f"admin:readiness_item_{name}", args=[ChecklistItem.objects.get(key=key).pk])


class TestDashboard:
    def test_renders_progress_blockers_and_changes(self, admin_client_for, signer):
        probes = select_probes(items=["B06", "B07"])
        with override_settings(SESSION_COOKIE_AGE=3600):
            run_checks(probes)
        with override_settings(SESSION_COOKIE_AGE=1209600):
            run_checks(probes)
        response = admin_client_for(signer).get(reverse("admin:readiness_dashboard"))
        assert response.status_code == 200
        html = response.content.decode()
        assert "Blockers first" in html and "Run all checks now" in html
        assert html.count('class="rd-bar"') == Section.objects.count()
        assert "Phase 5: deploy and monitor" in html and "Reliability" in html
        blockers = response.context["blockers"]
        assert blockers[0]["item"].key == "B06"  # failing blockers come first
        assert blockers[0]["item"].status == ItemStatus.FAILING
        [change] = response.context["changes"]
        assert (change.probe_id, change.before, change.after) == ("readiness.E011", "pass", "fail")
        assert 'id="rd-changes"' in html

    def test_viewer_sees_no_run_button(self, admin_client_for, viewer):
        response = admin_client_for(viewer).get(reverse("admin:readiness_dashboard"))
        assert response.status_code == 200
        assert "Run all checks now" not in response.content.decode()

    def test_anonymous_is_sent_to_login(self):
        response = Client().get(reverse("admin:readiness_dashboard"))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


class TestRunning:
    def test_run_all_button(self, admin_client_for, signer):
        client = admin_client_for(signer)
        assert client.get(reverse("admin:readiness_run_all")).status_code == 405
        response = client.post(reverse("admin:readiness_run_all"), follow=True)
        run = CheckRun.objects.get()
        assert run.trigger == "admin" and run.triggered_by == signer
        assert run.results.count() > 35
        assert response.redirect_chain[-1][0] == reverse("admin:readiness_dashboard")
        assert f"Run #{run.pk}:" in response.content.decode()
        assert LogEntry.objects.filter(object_id=str(run.pk), user=signer).exists()

    def test_run_needs_permission(self, admin_client_for, viewer):
        assert admin_client_for(viewer).post(reverse("admin:readiness_run_all")).status_code == 403
        assert not CheckRun.objects.exists()

    def test_action_runs_selected_items(self, admin_client_for, signer):
        ids = ChecklistItem.objects.filter(key__in=["B06", "B07", "H01"]).values_list(
            "pk", flat=True
        )
        response = admin_client_for(signer).post(
            reverse("admin:readiness_checklistitem_changelist"),
            {"action": "run_selected_checks", "_selected_action": list(ids)},
            follow=True,
        )
        assert response.status_code == 200
        run = CheckRun.objects.get()
        assert sorted(run.results.values_list("probe_id", flat=True)) == [
            "readiness.E011",
            "readiness.E012",
        ]

    def test_action_hidden_without_permission(self, admin_client_for, viewer):
        response = admin_client_for(viewer).get(reverse("admin:readiness_checklistitem_changelist"))
        assert "run_selected_checks" not in response.content.decode()

    def test_run_one_item(self, admin_client_for, signer):
        response = admin_client_for(signer).post(item_url("run", "B07"))
        assert response.status_code == 302
        assert ChecklistItem.objects.get(key="B07").status == ItemStatus.PASSING


class TestSignOffPages:
    def test_sign_off_and_revoke(self, admin_client_for, signer):
        client = admin_client_for(signer)
        page = client.get(item_url("sign_off", "H01"))
        assert page.status_code == 200 and "Developers → Settings" in page.content.decode()
        response = client.post(
            item_url("sign_off", "H01"),
            {
                "signer_role": "",
                "environment": "production",
                "release": "v2.0",
                "evidence_url": "https://wiki.example.com/h01",
                "notes": "checked",
                "expires_at": "",
            },
        )
        assert response.status_code == 302
        h01 = ChecklistItem.objects.get(key="H01")
        assert h01.status == ItemStatus.SIGNED_OFF and h01.signoffs.get().release == "v2.0"
        change = client.get(reverse("admin:readiness_checklistitem_change", args=[h01.pk]))
        html = change.content.decode()
        assert "Signed off by Grace Hopper" in html and "Revoke sign-off" in html
        response = client.post(item_url("revoke", "H01"), {"reason": "wrong environment"})
        assert response.status_code == 302
        h01.refresh_from_db()
        assert h01.status == ItemStatus.TODO

    def test_refusal_is_shown_in_the_form(self, admin_client_for, signer):
        response = admin_client_for(signer).post(item_url("sign_off", "H06"), {"notes": "done"})
        assert response.status_code == 200
        assert "section &#x27;Quick checks&#x27; comes first" in response.content.decode()
        assert not ChecklistItem.objects.get(key="H06").signoffs.exists()

    def test_sign_off_needs_permission(self, admin_client_for, viewer):
        assert admin_client_for(viewer).get(item_url("sign_off", "H01")).status_code == 403

    def test_past_reattest_date_refused(self, admin_client_for, signer):
        response = admin_client_for(signer).post(
            item_url("sign_off", "H01"), {"notes": "ok", "expires_at": "2020-01-01"}
        )
        assert "must be in the future" in response.content.decode()

    def test_not_applicable_with_reason(self, admin_client_for, signer):
        client = admin_client_for(signer)
        response = client.post(item_url("applicability", "H21"), {"applicable": "0", "reason": ""})
        assert "Say why this does not apply" in response.content.decode()
        client.post(item_url("applicability", "H21"), {"applicable": "0", "reason": "No MCP."})
        h21 = ChecklistItem.objects.get(key="H21")
        assert h21.status == ItemStatus.NOT_APPLICABLE and h21.na_reason == "No MCP."

    def test_section_not_applicable(self, admin_client_for, signer):
        section = Section.objects.get(key="mcp")
        url = reverse("admin:readiness_section_applicability", args=[section.pk])
        admin_client_for(signer).post(url, {"applicable": "0", "reason": "We ship no MCP server."})
        section.refresh_from_db()
        assert section.not_applicable and section.na_reason == "We ship no MCP server."

    def test_owner_and_evidence_edits_go_to_history(self, admin_client_for, signer):
        h04 = ChecklistItem.objects.get(key="H04")
        url = reverse("admin:readiness_checklistitem_change", args=[h04.pk])
        client = admin_client_for(signer)
        form = client.get(url).context["adminform"].form
        data = {
            name: form.initial.get(name) or ""
            for name in ("owner", "evidence_text", "evidence_url")
        }
        data.update(
            owner=signer.pk, evidence_text="SOP v3", evidence_url="https://wiki.example.com/sop"
        )
        for prefix in ("signoffs", "events"):
            data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        inline_prefixes = [
            f.prefix for f in client.get(url).context["inline_admin_formsets"] for f in [f.formset]
        ]
        for prefix in inline_prefixes:
            data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        response = client.post(url, data)
        assert response.status_code == 302, response.content.decode()[:2000]
        actions = set(h04.events.values_list("action", flat=True))
        assert {ItemEvent.Action.OWNER, ItemEvent.Action.EVIDENCE} <= actions


class TestExport:
    def test_markdown(self, admin_client_for, signer):
        with production():
            run_checks(select_probes(items=["A09", "B07"]), network=False)
        signoffs.sign_off(
            ChecklistItem.objects.get(key="H01"),
            signer,
            evidence_url="https://wiki.example.com/h01",
            notes="matches",
        )
        response = admin_client_for(signer).get(reverse("admin:readiness_export") + "?format=md")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/markdown")
        assert 'filename="readiness-' in response["Content-Disposition"]
        text = response.content.decode()
        assert text.startswith("# Readiness report")
        assert "## Production readiness" in text and "## Migration phases" in text
        assert "- [x] **H01 Credentials match the production dashboard**: signed off" in text
        assert "Sign-off: Grace Hopper (Eng lead)" in text
        assert "`readiness.E012` PASS: Sessions are stored server side" in text
        assert CLIENT_SECRET not in text

    def test_html(self, admin_client_for, signer):
        response = admin_client_for(signer).get(reverse("admin:readiness_export") + "?format=html")
        assert response["Content-Type"].startswith("text/html")
        assert "<h1>Readiness report</h1>" in response.content.decode()

    def test_unknown_format(self, admin_client_for, signer):
        response = admin_client_for(signer).get(reverse("admin:readiness_export") + "?format=pdf")
        assert response.status_code == 400 and b"use md or html" in response.content


def test_other_admin_pages_render(admin_client_for, superuser):
    client = admin_client_for(superuser)
    run = run_checks(select_probes(items=["B07"])).run
    for url in (
        reverse("admin:readiness_checklistitem_changelist"),
        reverse("admin:readiness_checklistitem_changelist") + "?status__exact=passing",
        reverse("admin:readiness_section_changelist"),
        reverse("admin:readiness_checkrun_changelist"),
        reverse("admin:readiness_checkrun_change", args=[run.pk]),
        reverse("admin:readiness_signoff_changelist"),
        reverse(
            "admin:readiness_checklistitem_change", args=[ChecklistItem.objects.get(key="B07").pk]
        ),
    ):
        assert client.get(url).status_code == 200, url


def test_section_list_shows_progress_and_blocking(admin_client_for, superuser):
    client = admin_client_for(superuser)
    html = client.get(reverse("admin:readiness_section_changelist")).content.decode()
    assert html.count("width:140px") == Section.objects.count()
    assert "Quick checks, Core auth flows" in html  # blocked-by column of a later section
    bad_filter = client.get(reverse("admin:readiness_section_changelist") + "?nope=1")
    assert bad_filter.status_code == 302


def test_status_json_for_staff_only(admin_client_for, viewer, user):
    run_checks(select_probes(items=["B07"]))
    url = reverse("admin:readiness_status")
    response = admin_client_for(viewer).get(url)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    payload = response.json()
    assert payload["items"]["B07"] == {
        "status": "passing",
        "outcome": "pass",
        "section": "core_flows",
    }
    assert payload["last_run"]["counts"]["pass"] == 1 and "A01" in payload["open_blockers"]
    assert admin_client_for(user).get(url).status_code == 302  # not staff: to the admin login


class TestHistoryCannotBeDeleted:
    def test_runs_cannot_be_deleted(self, admin_client_for, superuser):
        from django.db.models import ProtectedError

        run = run_checks(select_probes(items=["B07"])).run
        client = admin_client_for(superuser)
        url = reverse("admin:readiness_checkrun_delete", args=[run.pk])
        assert client.post(url, {"post": "yes"}).status_code == 403
        changelist = reverse("admin:readiness_checkrun_changelist")
        response = client.post(
            changelist, {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"}
        )
        assert response.status_code in (200, 302)
        with pytest.raises(ProtectedError):
            run.delete()
        assert CheckRun.objects.filter(pk=run.pk).exists() and run.results.count() == 1


class TestApplicabilityLinks:
    """The applicability pages are linked from the section page, the item page and the dashboard
    rows, for those who may use them only."""

    @pytest.fixture
    def section_signer(self, db):
        return StaffFactory(username="lead", perms=[*SIGNER_PERMS, "readiness.view_section"])

    @pytest.fixture
    def section_viewer(self, db):
        return StaffFactory(
            username="reader",
            perms=["readiness.view_section", "readiness.view_checklistitem"],
        )

    @staticmethod
    def section_links(html: str) -> list[str]:
        prefix = reverse("admin:readiness_section_changelist")
        return re.findall(rf'href="({re.escape(prefix)}\d+/applicability/)"', html)

    def test_section_page_links_to_its_applicability_form(self, admin_client_for, section_signer):
        section = Section.objects.get(key="mcp")
        client = admin_client_for(section_signer)
        page = client.get(reverse("admin:readiness_section_change", args=[section.pk]))
        assert page.status_code == 200
        assert self.section_links(page.content.decode()) == [
            reverse("admin:readiness_section_applicability", args=[section.pk])
        ]
        form = client.get(self.section_links(page.content.decode())[0])
        assert form.status_code == 200
        assert f"Applicability of &#x27;{section.title}&#x27;" in form.content.decode()

    def test_dashboard_links_each_section_row(self, admin_client_for, section_signer):
        html = admin_client_for(section_signer).get(reverse("admin:readiness_dashboard")).content
        assert sorted(self.section_links(html.decode())) == sorted(
            reverse("admin:readiness_section_applicability", args=[pk])
            for pk in Section.objects.values_list("pk", flat=True)
        )

    def test_hidden_without_the_permission(self, admin_client_for, section_viewer):
        client = admin_client_for(section_viewer)
        section = Section.objects.get(key="mcp")
        pages = [
            client.get(reverse("admin:readiness_section_change", args=[section.pk])),
            client.get(reverse("admin:readiness_dashboard")),
            client.get(
                reverse(
                    "admin:readiness_checklistitem_change",
                    args=[ChecklistItem.objects.get(key="H21").pk],
                )
            ),
        ]
        assert [page.status_code for page in pages] == [200, 200, 200]
        for page in pages:
            assert "/applicability/" not in page.content.decode()

    def test_item_page_links_for_the_permission(self, admin_client_for, signer):
        h21 = ChecklistItem.objects.get(key="H21")
        page = admin_client_for(signer).get(
            reverse("admin:readiness_checklistitem_change", args=[h21.pk])
        )
        assert f'href="{item_url("applicability", "H21")}"' in page.content.decode()


def change_url(key: str) -> str:
    return reverse("admin:readiness_checklistitem_change", args=[item_pk(key)])


def item_pk(key: str) -> int:
    return ChecklistItem.objects.get(key=key).pk


def count_queries(client: Client, url: str) -> tuple[int, object]:
    """Queries of a GET of ``url``, once the per-process caches (content types) are warm."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response


class TestOwnerField:
    """The owner is picked by searching active staff, not from a select of every user."""

    def test_item_page_does_not_list_every_user(self, admin_client_for, signer):
        client = admin_client_for(signer)
        UserFactory.create_batch(3)
        few, _ = count_queries(client, change_url("H04"))
        UserFactory.create_batch(150)
        many, response = count_queries(client, change_url("H04"))
        assert many == few
        html = response.content.decode()
        select = re.search(r'<select name="owner".*?</select>', html, re.S).group(0)
        assert select.count("<option") == 1  # the empty choice: H04 has no owner
        assert reverse("admin:readiness_owner_search") in select

    def test_current_owner_is_the_only_option(self, admin_client_for, signer):
        ChecklistItem.objects.filter(key="H04").update(owner=signer)
        html = admin_client_for(signer).get(change_url("H04")).content.decode()
        select = re.search(r'<select name="owner".*?</select>', html, re.S).group(0)
        assert re.findall(r"<option[^>]*>([^<]*)</option>", select) == ["", "Grace Hopper (signer)"]

    def test_search_offers_active_staff_only(self, admin_client_for, signer):
        StaffFactory(username="ada.staff", first_name="Ada", last_name="Lovelace")
        StaffFactory(username="ada.gone", first_name="Ada", last_name="Byron", is_active=False)
        UserFactory(username="ada.customer", first_name="Ada", last_name="King")
        url = reverse("admin:readiness_owner_search")
        response = admin_client_for(signer).get(url, {"term": "ada"})
        assert response.json() == {
            "results": [
                {
                    "id": str(User.objects.get(username="ada.staff").pk),
                    "text": "Ada Lovelace (ada.staff)",
                }
            ],
            "pagination": {"more": False},
        }
        words = admin_client_for(signer).get(url, {"term": "grace hop"}).json()["results"]
        assert [r["text"] for r in words] == ["Grace Hopper (signer)"]

    def test_search_pages(self, admin_client_for, signer):
        StaffFactory.create_batch(OWNER_PAGE_SIZE + 5, first_name="Pat")
        url = reverse("admin:readiness_owner_search")
        first = admin_client_for(signer).get(url, {"term": "pat"}).json()
        second = admin_client_for(signer).get(url, {"term": "pat", "page": "2"}).json()
        assert (len(first["results"]), first["pagination"]["more"]) == (OWNER_PAGE_SIZE, True)
        assert (len(second["results"]), second["pagination"]["more"]) == (5, False)

    def test_search_needs_the_change_permission(self, admin_client_for, viewer):
        url = reverse("admin:readiness_owner_search")
        assert admin_client_for(viewer).get(url, {"term": "a"}).status_code == 403

    def test_non_staff_owner_refused(self, admin_client_for, signer):
        customer = UserFactory(username="customer")
        response = admin_client_for(signer).post(
            change_url("H04"), {**item_form_data(), "owner": customer.pk}
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["owner"] == [OWNER_INVALID]
        assert ChecklistItem.objects.get(key="H04").owner is None

    def test_owner_who_left_the_staff_can_stay(self, admin_client_for, signer):
        former = StaffFactory(username="former")
        ChecklistItem.objects.filter(key="H04").update(owner=former)
        User.objects.filter(pk=former.pk).update(is_staff=False)
        response = admin_client_for(signer).post(
            change_url("H04"), {**item_form_data(), "owner": former.pk, "evidence_text": "SOP v4"}
        )
        assert response.status_code == 302
        h04 = ChecklistItem.objects.get(key="H04")
        assert (h04.owner, h04.evidence_text) == (former, "SOP v4")


def item_form_data() -> dict[str, str]:
    """A change form of an item as posted unchanged (no inline rows)."""
    data = {"owner": "", "evidence_text": "", "evidence_url": ""}
    for prefix in ("signoffs", "events"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


class TestRevokeLink:
    def test_not_offered_without_an_active_signoff(self, admin_client_for, signer):
        client = admin_client_for(signer)
        html = client.get(change_url("H01")).content.decode()
        assert "Sign off</a>" in html and "Revoke sign-off" not in html
        signoffs.sign_off(ChecklistItem.objects.get(key="H01"), signer, notes="checked")
        assert "Revoke sign-off" in client.get(change_url("H01")).content.decode()
        signoffs.revoke_latest(ChecklistItem.objects.get(key="H01"), signer, "wrong env")
        assert "Revoke sign-off" not in client.get(change_url("H01")).content.decode()

    def test_revoke_page_without_signoff_goes_back_to_the_item(self, admin_client_for, signer):
        response = admin_client_for(signer).get(item_url("revoke", "H01"), follow=True)
        assert response.redirect_chain == [(change_url("H01"), 302)]
        assert "H01 has no sign-off to revoke." in response.content.decode()


class TestApplicabilityPagesNeedThePermission:
    """Without readiness.mark_not_applicable the form itself is refused, not only its saving."""

    def test_item_page(self, admin_client_for, viewer):
        client = admin_client_for(viewer)
        assert client.get(item_url("applicability", "H21")).status_code == 403
        response = client.post(item_url("applicability", "H21"), {"applicable": "0", "reason": "x"})
        assert response.status_code == 403
        assert not ChecklistItem.objects.get(key="H21").not_applicable

    def test_section_page(self, admin_client_for):
        reader = StaffFactory(username="reader", perms=["readiness.view_section"])
        section = Section.objects.get(key="mcp")
        url = reverse("admin:readiness_section_applicability", args=[section.pk])
        assert admin_client_for(reader).get(url).status_code == 403
        assert (
            admin_client_for(reader).post(url, {"applicable": "0", "reason": "x"}).status_code
            == 403
        )


class TestListQueries:
    """Pages whose query count must not grow with their rows."""

    def test_signoff_list(self, admin_client_for, superuser, signer):
        item = ChecklistItem.objects.get(key="H01")
        client = admin_client_for(superuser)
        url = reverse("admin:readiness_signoff_changelist")

        def add(count: int) -> None:
            for n in range(count):
                signoff = SignOff.objects.create(item=item, signed_by=signer, signer_name="Grace")
                if n % 2:
                    SignOffRevocation.objects.create(
                        signoff=signoff, revoked_by_name="Ada", reason="stale"
                    )

        add(2)
        few, _ = count_queries(client, url)
        add(30)
        many, response = count_queries(client, url)
        assert many == few
        html = response.content.decode()
        assert html.count('alt="True"') == 16 and html.count('alt="False"') == 16
        ordered = client.get(url, {"o": "7"})  # by the revoked column
        assert ordered.status_code == 200

    def test_check_run_results(self, admin_client_for, superuser):
        client = admin_client_for(superuser)
        small = run_checks(select_probes(items=["B06"]), network=False).run
        large = run_checks(select_probes(kinds=["S"]), network=False).run
        assert large.results.count() > 10 * small.results.count()
        few, response = count_queries(
            client, reverse("admin:readiness_checkrun_change", args=[small.pk])
        )
        assert "B06 Session lifetime bounded" in response.content.decode()
        many, _ = count_queries(client, reverse("admin:readiness_checkrun_change", args=[large.pk]))
        assert many == few

    def test_item_page_with_its_signoffs_and_history(self, admin_client_for, superuser, signer):
        client = admin_client_for(superuser)
        h01 = ChecklistItem.objects.get(key="H01")

        def sign_and_revoke(times: int) -> None:
            for _ in range(times):
                signoffs.sign_off(h01, signer, notes="checked")
                signoffs.revoke_latest(h01, signer, "again")

        sign_and_revoke(1)
        few, _ = count_queries(client, change_url("H01"))
        sign_and_revoke(8)
        many, response = count_queries(client, change_url("H01"))
        assert many == few
        assert response.content.decode().count("revoked by Grace Hopper: again") == 9
