"""The catalogue loaded by the data migration, and updated by readiness_sync without losing state."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from django.core.management import call_command

from readiness import catalogue, signoffs
from readiness.models import ChecklistItem, ItemEvent, ItemStatus, Section
from readiness.sync import sync, sync_catalogue

pytestmark = pytest.mark.django_db


def test_data_migration_loaded_the_catalogue():
    assert Section.objects.count() == len(catalogue.SECTIONS)
    assert ChecklistItem.objects.count() == len(catalogue.all_items())
    quick = Section.objects.get(key="quick")
    assert (quick.checklist, quick.order, quick.title) == ("production", 1, "Quick checks")
    deploy = Section.objects.get(key="phase5_deploy")
    assert (deploy.checklist, deploy.order) == ("migration", 5)
    item = ChecklistItem.objects.get(key="H01")
    assert item.status == ItemStatus.TODO
    assert item.watches == list(catalogue.CREDENTIALS)
    assert item.events.get().action == ItemEvent.Action.CREATED


def test_sync_is_idempotent():
    report = sync()
    assert not report.changed


def edited_catalogue() -> tuple[catalogue.SectionDef, ...]:
    """The catalogue with H01 renamed and H02 removed."""
    sections = []
    for section in catalogue.SECTIONS:
        items = tuple(
            replace(item, title="Credentials match the dashboard (renamed)")
            if item.key == "H01"
            else item
            for item in section.items
            if item.key != "H02"
        )
        sections.append(replace(section, items=items))
    return tuple(sections)


def test_sync_keeps_signoffs_owner_and_history(signer):
    h01 = ChecklistItem.objects.get(key="H01")
    h02 = ChecklistItem.objects.get(key="H02")
    h01.owner = signer
    h01.evidence_text = "screenshot in the wiki"
    h01.save()
    signoff = signoffs.sign_off(h01, signer, evidence_url="https://wiki.example.com/h01")
    signoffs.sign_off(h02, signer, notes="only password and Google")

    report = sync_catalogue(Section, ChecklistItem, ItemEvent, edited_catalogue())

    # H01 renamed; the items after H02 move up one place.
    assert report.items_updated == {
        "H01": ["title"],
        "H03": ["order"],
        "H04": ["order"],
        "H05": ["order"],
    }
    assert report.items_retired == ["H02"]
    h01.refresh_from_db()
    assert h01.title == "Credentials match the dashboard (renamed)"
    assert (h01.status, h01.owner, h01.evidence_text) == (
        ItemStatus.SIGNED_OFF,
        signer,
        "screenshot in the wiki",
    )
    assert h01.signoffs.get() == signoff
    assert h01.events.filter(action="catalogue", message="Catalogue changed: title").exists()
    h02.refresh_from_db()
    assert h02.retired and h02.signoffs.count() == 1
    assert h02.events.filter(action="retired").exists()

    # Back to the real catalogue: H02 returns with its sign-off, H01 gets its title back.
    report = sync()
    assert report.items_updated.keys() == {"H01", "H02", "H03", "H04", "H05"}
    h02.refresh_from_db()
    assert not h02.retired and h02.status == ItemStatus.SIGNED_OFF


def test_sync_command_dry_run_and_json():
    ChecklistItem.objects.filter(key="A01").update(title="Old title")
    out = io.StringIO()
    call_command("readiness_sync", "--dry-run", "--json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["dry_run"] is True
    assert payload["items_updated"] == {"A01": ["title"]}
    assert ChecklistItem.objects.get(key="A01").title == "Old title"

    out = io.StringIO()
    call_command("readiness_sync", stdout=out)
    assert "Did update items: A01" in out.getvalue()
    assert ChecklistItem.objects.get(key="A01").title == "DEBUG is off"

    out = io.StringIO()
    call_command("readiness_sync", stdout=out)
    assert out.getvalue().strip() == "The checklists already match the catalogue."
