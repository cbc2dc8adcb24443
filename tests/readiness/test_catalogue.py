"""The catalogue as written: every item says what to do, and watches settings that exist."""

from __future__ import annotations

import io

import pytest
from django.conf import global_settings, settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from readiness import signoffs
from readiness.catalogue import all_items, find_item
from readiness.conf import app_settings as readiness_settings
from readiness.models import ChecklistItem, ItemStatus
from scalekit_auth.conf import app_settings as scalekit_settings

ITEMS = [item for _, item in all_items()]


@pytest.mark.parametrize("item", ITEMS, ids=[item.key for item in ITEMS])
def test_every_item_has_guidance(item):
    """The item page and the sign-off page show it; an empty one read "Guidance: -"."""
    assert len(item.guidance.strip()) >= 40, (
        f"{item.key} needs guidance: what to do, what proves it"
    )


@pytest.mark.parametrize("path", sorted({path for item in ITEMS for path in item.watches}), ids=str)
def test_watched_settings_exist(path):
    """A watch of a setting that does not exist never makes a sign-off stale."""
    name, _, key = path.partition(".")
    if name == "SCALEKIT_AUTH":
        assert hasattr(scalekit_settings, key), f"{path} is not a scalekit_auth setting"
    elif name == "READINESS":
        assert hasattr(readiness_settings, key), f"{path} is not a readiness setting"
    else:
        assert not key and (hasattr(global_settings, name) or hasattr(settings, name)), path


@pytest.mark.django_db
def test_sync_brings_guidance_to_an_existing_database(signer):
    """A database loaded before the guidance was written gets it from readiness_sync, and keeps
    its sign-offs (no data migration: catalogue text goes through the sync)."""
    m01 = ChecklistItem.objects.get(key="M01")
    ChecklistItem.objects.filter(pk=m01.pk).update(guidance="")
    signoff = signoffs.sign_off(m01, signer, notes="audit attached")
    call_command("readiness_sync", stdout=io.StringIO())
    m01.refresh_from_db()
    assert m01.guidance == find_item("M01").guidance
    assert m01.status == ItemStatus.SIGNED_OFF and m01.signoffs.get() == signoff
    assert m01.events.filter(action="catalogue", message="Catalogue changed: guidance").exists()

    client = Client()
    client.force_login(signer)
    html = client.get(reverse("admin:readiness_checklistitem_change", args=[m01.pk])).content
    assert escape(find_item("M01").guidance) in html.decode()
