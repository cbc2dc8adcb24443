"""The dashboard in a real browser: headless Chromium, driven by Playwright, against a live server.

The screenshot is saved to test-artifacts/readiness-dashboard.png for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from readiness import signoffs
from readiness.models import ChecklistItem, CheckRun
from readiness.runner import run_checks, select_probes
from readiness.sync import sync

from .factories import StaffFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@override_settings(SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False)
def test_dashboard_screenshot(live_server, scalekit_settings, monkeypatch):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    sync()  # a transactional test may start from a flushed database
    signer = StaffFactory(
        username="lead", first_name="Grace", last_name="Hopper", is_superuser=True
    )
    for key in ("H01", "H02", "H04"):
        signoffs.sign_off(
            ChecklistItem.objects.get(key=key),
            signer,
            evidence_url=f"https://wiki.example.com/{key.lower()}",
        )
    with override_settings(SESSION_COOKIE_AGE=3600):
        run_checks(select_probes(sections=["core_flows"]))
    client = Client()
    client.force_login(signer)
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "readiness-dashboard.png"
    target.unlink(missing_ok=True)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session_cookie,
                        "url": live_server.url,
                    }
                ]
            )
            page = context.new_page()
            page.goto(f"{live_server.url}/admin/readiness/checklistitem/dashboard/")
            page.get_by_role("button", name="Run all checks now").click()
            page.wait_for_load_state("networkidle")
            assert page.locator("#rd-blockers tbody tr").count() > 5
            assert "Run #" in page.locator(".messagelist").inner_text()
            changes = page.locator("#rd-changes").inner_text()
            assert "readiness.E011" in changes
            page.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()
    assert target.stat().st_size > 20_000
    assert CheckRun.objects.filter(trigger="admin", triggered_by=signer).count() == 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@override_settings(SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False)
def test_owner_is_found_by_typing(live_server, monkeypatch):
    """The item page's owner field searches active staff as one types, and saves the choice."""
    from playwright.sync_api import expect, sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    sync()
    signer = StaffFactory(
        username="lead", first_name="Grace", last_name="Hopper", is_superuser=True
    )
    owner = StaffFactory(username="ada", first_name="Ada", last_name="Lovelace")
    UserFactory(username="ada.customer", first_name="Ada", last_name="King")
    client = Client()
    client.force_login(signer)
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    h04 = ChecklistItem.objects.get(key="H04")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context()
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session_cookie,
                        "url": live_server.url,
                    }
                ]
            )
            page = context.new_page()
            page.goto(f"{live_server.url}/admin/readiness/checklistitem/{h04.pk}/change/")
            page.locator(".field-owner .select2-selection").click()
            page.locator(".select2-search__field").fill("ada")
            options = page.locator(".select2-results__option:not(.loading-results)")
            expect(options).to_have_text(["Ada Lovelace (ada)"])  # not the customer Ada King
            options.first.click()
            page.locator("input[name=_save]").click()
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    h04.refresh_from_db()
    assert h04.owner == owner
