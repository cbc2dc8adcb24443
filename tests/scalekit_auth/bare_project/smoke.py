"""Run by ``test_bare_project.py`` under ``tests.scalekit_auth.bare_project.settings``, in a
process of its own (the environment holds the emulator's SCALEKIT_* variables and no trust
variable, as a fresh project's shell would). Not collected otherwise: not named ``test_*``."""

from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import pytest
from django.contrib.auth import get_user_model
from django.core.checks import WARNING, run_checks
from django.core.management import call_command

from scalekit_auth import rollout
from scalekit_auth.emulator.testing import hosted_login
from scalekit_auth.models import AuthEvent, RolloutSettings

pytestmark = pytest.mark.django_db

CA = os.environ["SCALEKIT_CA_BUNDLE"]


def test_check_passes_with_nothing_to_report():
    call_command("check")
    assert [str(m) for m in run_checks() if m.level >= WARNING] == []


def test_a_forged_state_shows_the_error_page(client):
    response = client.get("/auth/callback/", {"code": "x", "state": "forged"})
    assert response.status_code == 400
    assert b"Sign-in failed" in response.content and b"state_mismatch" in response.content


def test_the_partial_rollout_asks_the_email(client):
    RolloutSettings.objects.create(percentage=0)
    try:
        response = client.get("/auth/login/")
    finally:
        rollout.forget()  # the row is rolled back, the process's copy of it is not
    assert response.status_code == 200 and b'name="email"' in response.content


def test_seeded_from_the_database_a_user_logs_in_through_the_emulator(client):
    """The README's seeding path, then a hosted login without ?next= (LOGIN_REDIRECT_URL)."""
    user = get_user_model().objects.create_user("ada", "ada@acme.example", "pw")
    call_command("migration_import", from_database=True, no_progress=True, stdout=io.StringIO())

    authorize = client.get("/auth/login/")["Location"]
    callback = urlsplit(hosted_login(authorize, "ada@acme.example", ca_path=CA))
    response = client.get(f"{callback.path}?{callback.query}")

    reasons = list(AuthEvent.objects.values_list("reason", flat=True))
    assert response.status_code == 302 and response["Location"] == "/", reasons
    assert client.session["_auth_user_id"] == str(user.pk)
    assert user.scalekit_identity.linked_by == "external_id"
    # CA_BUNDLE was added to the trust store, not put in its place.
    trusted = Path(os.environ["REQUESTS_CA_BUNDLE"]).read_bytes()
    assert trusted.startswith(Path(certifi.where()).read_bytes().rstrip(b"\n"))
