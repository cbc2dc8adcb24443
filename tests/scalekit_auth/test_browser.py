"""A real browser through the whole login: headless Chromium (Debian's) driven by Playwright,
against the live Django server and the emulator's hosted login page over their real ports."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.db import connection

from scalekit_auth import rollout, tokens
from scalekit_auth.session import SESSION_KEY

from .conftest import add_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The emulator's certificate is issued by its own CA, which this browser does not know.
    "--ignore-certificate-errors",
]
# Chromium offers HTTP/2 as well as HTTP/1.1, so this test also guards the emulator's ALPN
# preference: a browser that lands on its gRPC side gets net::ERR_HTTP2_PROTOCOL_ERROR.
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def chromium():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; "
            "scripts/bootstrap.sh --test does it) to run the browser tests."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def site(live_server, fresh_emulator, settings):
    """The live server as a Scalekit application: its URIs registered in the emulator."""
    callback = f"{live_server.url}/auth/callback/"
    after_logout = f"{live_server.url}/"
    fresh_emulator.control.register_uris([callback], [after_logout])
    settings.SCALEKIT_AUTH = {
        **settings.SCALEKIT_AUTH,
        "ENVIRONMENT_URL": fresh_emulator.url,
        "CLIENT_ID": fresh_emulator.client_id,
        "CLIENT_SECRET": fresh_emulator.client_secret,
        "CA_BUNDLE": str(fresh_emulator.ca_path),
        "REDIRECT_URI": callback,
        "POST_LOGOUT_REDIRECT_URI": after_logout,
    }
    # live_server speaks plain http; Chromium drops Secure cookies set over http.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    tokens.keys.clear()
    tokens.claims_cache.clear()
    rollout.forget()
    yield live_server
    tokens.keys.clear()
    tokens.claims_cache.clear()
    rollout.forget()


def outside_the_event_loop(function):
    """Run ``function`` in another thread: Playwright's sync API keeps an asyncio loop in this
    one, where Django refuses database queries (SynchronousOnlyOperation)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


def sessions_holding_tokens() -> int:
    try:
        return sum(SESSION_KEY in s.get_decoded() for s in Session.objects.all())
    finally:
        connection.close()


def redirect_chain(response) -> list[str]:
    """Every URL the browser went through to reach ``response``, first to last."""
    urls, request = [], response.request
    while request is not None:
        urls.append(request.url)
        request = request.redirected_from
    return urls[::-1]


def test_login_profile_and_logout_in_headless_chromium(chromium, site, sdk, fresh_emulator):
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["admin"])
    page = chromium.new_context().new_page()

    # A protected page sends the browser to our login, which sends it to Scalekit.
    response = page.goto(f"{site.url}/profile/")
    chain = redirect_chain(response)
    assert chain[:2] == [f"{site.url}/profile/", f"{site.url}/auth/login/?next=/profile/"]
    assert chain[-1].startswith(f"{fresh_emulator.url}/oauth/authorize?")
    assert parse_qs(urlsplit(chain[-1]).query)["code_challenge_method"] == ["S256"]

    # The hosted login page: type the email, continue, land on the page asked for.
    page.fill("#email", "ada@acme.example")
    with page.expect_navigation(url=f"{site.url}/profile/"):
        page.click("button[type=submit]")
    assert page.text_content("#scalekit-user") == sk_user.id
    assert page.text_content("#scalekit-org") == org.id
    assert page.text_content("#scalekit-roles") == "admin"
    assert "ada@acme.example" in page.text_content("#django-user")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sessionid"]["httpOnly"] is True
    assert all("eyJ" not in c["value"] for c in cookies.values())  # no token in the browser
    assert outside_the_event_loop(sessions_holding_tokens) == 1  # they are server side
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-login.png"), full_page=True)

    # Log out with the form of the base template: through Scalekit's logout, back to the site.
    with page.expect_navigation(url=f"{site.url}/"):
        page.click("nav form button[type=submit]")
    nav = page.locator("nav")
    assert nav.get_by_role("link", name="Log in").count() == 1
    assert nav.get_by_role("button", name="Log out").count() == 0
    assert fresh_emulator.control.state()["sessions"] == 0  # the Scalekit session ended too
    assert not outside_the_event_loop(sessions_holding_tokens)

    # The protected page is protected again, and Scalekit asks for the email again.
    again = page.goto(f"{site.url}/profile/")
    chain = redirect_chain(again)
    assert chain[1] == f"{site.url}/auth/login/?next=/profile/"
    assert chain[-1].startswith(f"{fresh_emulator.url}/oauth/authorize?")
    assert page.locator("#email").count() == 1
