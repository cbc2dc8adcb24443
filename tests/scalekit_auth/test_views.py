"""Login, callback and logout through the emulator's hosted login, with the real SDK."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils.html import escape

from scalekit_auth import session as token_session
from scalekit_auth import views
from scalekit_auth.emulator.testing import hosted_login
from scalekit_auth.models import AuthEvent, RolloutSettings, ScalekitIdentity, ScalekitSession
from scalekit_auth.session import SESSION_KEY

from . import project_backends
from .conftest import AFTER_LOGOUT, CALLBACK, add_user, finish, login, start

pytestmark = pytest.mark.django_db


def test_login_creates_a_linked_user_with_groups_and_lands_on_next(client, sdk, auth_emulator):
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["admin"])

    response = login(client, auth_emulator, "ada@acme.example", next="/profile/")

    assert response.status_code == 302 and response["Location"] == "/profile/"
    user = get_user_model().objects.get(email="ada@acme.example")
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    identity = user.scalekit_identity
    assert (identity.scalekit_user_id, identity.organization_id, identity.linked_by) == (
        sk_user.id,
        org.id,
        "created",
    )
    assert list(user.groups.values_list("name", flat=True)) == ["Scalekit admins"]
    page = client.get("/profile/")
    assert page.status_code == 200
    assert sk_user.id.encode() in page.content and org.id.encode() in page.content
    assert AuthEvent.objects.filter(kind="login", success=True, user=user).count() == 1


def test_login_url_carries_state_nonce_pkce_and_pass_through_parameters(client, auth_emulator):
    url = start(
        client, login_hint="ada@acme.example", organization_id="org_1", connection_id="conn_2"
    )
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(auth_emulator.url + "/oauth/authorize?")
    assert query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 43 and query["nonce"][0]
    assert query["scope"] == ["openid profile email offline_access"]
    assert (query["login_hint"], query["organization_id"], query["connection_id"]) == (
        ["ada@acme.example"],
        ["org_1"],
        ["conn_2"],
    )
    pending = client.session["_scalekit_login"][query["state"][0]]
    assert len(pending["verifier"]) >= 43 and pending["verifier"] not in url


def test_session_key_changes_at_login(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    url = start(client)
    before = client.session.session_key
    finish(client, auth_emulator, url, "ada@acme.example")
    assert before and client.session.session_key != before
    assert not Session.objects.filter(session_key=before).exists()


def test_state_mismatch_is_refused(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    start(client)  # this browser's own login is pending; the callback below is not it
    auth_emulator.control.reset_counters()

    callback = client.get("/auth/callback/", {"code": "x", "state": "forged"})

    assert callback.status_code == 400 and b"state_mismatch" in callback.content
    assert b"<nav>" in callback.content  # the project's scalekit_auth/base.html gives its layout
    assert "_auth_user_id" not in client.session and SESSION_KEY not in client.session
    assert AuthEvent.objects.filter(
        kind="login", success=False, reason__startswith="state_mismatch"
    ).exists()
    assert auth_emulator.control.counters()["calls"].get("/oauth/token", 0) == 0  # no code exchange


def test_replayed_callback_and_replayed_code_are_refused(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    location = hosted_login(start(client), "ada@acme.example", ca_path=auth_emulator.ca_path)
    path = urlsplit(location)
    first = client.get(f"{path.path}?{path.query}")
    assert first.status_code == 302
    again = client.get(f"{path.path}?{path.query}")
    assert again.status_code == 400 and b"state_mismatch" in again.content

    code = parse_qs(path.query)["code"][0]
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    replay = client.get("/auth/callback/", {"code": code, "state": state})
    assert replay.status_code == 400 and b"code_rejected" in replay.content
    assert b"already used" in replay.content


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/x", "http://evil.example", "javascript:alert(1)"],
)
def test_next_never_redirects_off_site(client, sdk, auth_emulator, next_url):
    add_user(sdk, "ada@acme.example")
    response = login(client, auth_emulator, "ada@acme.example", next=next_url)
    assert response.status_code == 302 and response["Location"] == "/"


def test_logout_is_post_only_and_leaves_no_tokens_behind(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    tokens = client.session[SESSION_KEY]
    key = client.session.session_key

    assert client.get("/auth/logout/").status_code == 405
    response = client.post("/auth/logout/")

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{auth_emulator.url}/oidc/logout"
    query = parse_qs(target.query)
    assert query["id_token_hint"] == [tokens["id_token"]] and query["post_logout_redirect_uri"] == [
        AFTER_LOGOUT
    ]
    assert not Session.objects.filter(session_key=key).exists()
    assert SESSION_KEY not in client.session and "_auth_user_id" not in client.session
    assert client.get("/profile/").status_code == 302


def test_logout_needs_the_csrf_token(sdk, auth_emulator):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    add_user(sdk, "ada@acme.example")
    login(browser, auth_emulator, "ada@acme.example")
    assert browser.post("/auth/logout/").status_code == 403
    assert SESSION_KEY in browser.session


def test_migrated_user_is_linked_by_external_id_and_keeps_account_and_groups(
    client, sdk, auth_emulator
):
    from django.contrib.auth.models import Group

    legacy = get_user_model().objects.create_user("ada", "ada@old-domain.example", "pw")
    legacy.groups.add(Group.objects.create(name="Editors"))
    add_user(sdk, "ada@acme.example", external_id=str(legacy.pk), roles=["admin"])

    login(client, auth_emulator, "ada@acme.example")

    assert get_user_model().objects.count() == 1
    legacy.refresh_from_db()
    assert legacy.scalekit_identity.linked_by == "external_id"
    assert legacy.scalekit_identity.external_id == str(legacy.pk)
    assert sorted(legacy.groups.values_list("name", flat=True)) == ["Editors", "Scalekit admins"]
    assert legacy.email == "ada@acme.example" and legacy.check_password("pw")
    assert int(client.session["_auth_user_id"]) == legacy.pk


def test_idp_initiated_login_goes_to_the_organization_with_relay_state(client, sdk, auth_emulator):
    org, _ = add_user(sdk, "ada@acme.example")
    answer = auth_emulator.control.idp_initiated_login(
        organization_id=org.id, login_hint="ada@acme.example", relay_state="/profile/"
    )
    url = urlsplit(answer["url"])
    response = client.get(f"{url.path}?{url.query}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["organization_id"] == [org.id] and query["login_hint"] == ["ada@acme.example"]
    done = finish(client, auth_emulator, response["Location"], "ada@acme.example")
    assert done["Location"] == "/profile/"


def test_forged_idp_initiated_token_is_refused(client, auth_emulator):
    response = client.get("/auth/login/", {"idp_initiated_login": "eyJhbGciOiJub25lIn0.e30."})
    assert response.status_code == 400 and b"idp_initiated_login_invalid" in response.content


def callback_error(client, error: str, description: str = ""):
    """The callback as Scalekit (or anyone with a pending state) sends it with ``error``."""
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    return client.get(
        "/auth/callback/", {"error": error, "error_description": description, "state": state}
    )


def test_error_from_scalekit_is_shown_and_logged(client, auth_emulator):
    response = callback_error(client, "access_denied", "Call 555-0100 to unlock your account")
    assert response.status_code == 400
    assert b"the sign-in was cancelled or refused at Scalekit" in response.content
    assert b"scalekit_error (access_denied)" in response.content
    assert b"555-0100" not in response.content  # the description is anyone's text
    event = AuthEvent.objects.get(kind="login", success=False)
    assert event.reason == "scalekit_error: access_denied"


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("login_required", views.OAUTH_ERRORS["login_required"]),
        ("temporarily_unavailable", views.OAUTH_ERRORS["temporarily_unavailable"]),
        ("invalid_scope", views.OAUTH_ERRORS["invalid_scope"]),
    ],
)
def test_each_known_error_code_has_its_own_fixed_text(client, auth_emulator, error, shown):
    response = callback_error(client, error, "whatever")
    assert escape(shown).encode() in response.content
    assert f"({error})".encode() in response.content
    assert AuthEvent.objects.get().reason == f"scalekit_error: {error}"


def test_unknown_error_texts_are_one_code_and_one_throttled_row(client, auth_emulator):
    """Made-up ``error`` values neither reach the page nor escape the event throttle."""
    for n in range(5):
        response = callback_error(client, f"Call 555-010{n} to unlock", f"<b>urgent {n}</b>")
        assert response.status_code == 400
        assert b"555-010" not in response.content and b"urgent" not in response.content
        assert b"scalekit_error (unknown_error)" in response.content
        assert escape(views.UNKNOWN_OAUTH_ERROR_TEXT).encode() in response.content
    assert list(AuthEvent.objects.values_list("reason", flat=True)) == [
        "scalekit_error: unknown_error"
    ]


def test_a_known_code_with_anything_appended_is_unknown(client, auth_emulator):
    callback_error(client, "access_denied: call 555-0100")
    assert AuthEvent.objects.get().reason == "scalekit_error: unknown_error"


def test_login_through_a_project_subclass_of_the_backend_stays_logged_in(
    client, sdk, auth_emulator, settings
):
    settings.AUTHENTICATION_BACKENDS = [project_backends.PATH, project_backends.LEGACY]
    add_user(sdk, "ada@acme.example")

    response = login(client, auth_emulator, "ada@acme.example", next="/profile/")

    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert client.session["_auth_user_backend"] == project_backends.PATH
    assert client.get("/profile/").status_code == 200


def test_inactive_user_cannot_log_in(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    client.post("/auth/logout/")
    ScalekitIdentity.objects.get().user.__class__.objects.update(is_active=False)
    response = login(client, auth_emulator, "ada@acme.example")
    assert response.status_code == 403 and b"user_inactive" in response.content


def test_the_rollout_decides_by_the_account_that_signed_in(client, sdk, auth_emulator):
    """The form's email is in the rollout, but a denied account signs in at the hosted page:
    it goes to the legacy login, not into the site."""
    RolloutSettings.objects.create(percentage=100, deny_list="joe@acme.example")
    add_user(sdk, "ann@acme.example")
    add_user(sdk, "joe@acme.example")
    to_scalekit = client.post("/auth/login/", {"email": "ann@acme.example", "next": "/profile/"})
    assert to_scalekit["Location"].startswith(auth_emulator.url + "/oauth/authorize?")

    response = finish(client, auth_emulator, to_scalekit["Location"], "joe@acme.example")

    assert response["Location"] == "/accounts/login/?next=%2Fprofile%2F&username=joe%40acme.example"
    assert "_auth_user_id" not in client.session and SESSION_KEY not in client.session
    assert get_user_model().objects.count() == 0
    event = AuthEvent.objects.get(kind="login", success=False)
    assert event.reason.startswith("rollout_excluded: joe@acme.example")


def test_logout_forgets_the_session_record_and_the_cached_refresh(client, sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")
    session = client.session
    data = session[SESSION_KEY]
    data["expires_at"] = 0
    session[SESSION_KEY] = data
    session.save()
    assert client.get("/whoami/").status_code == 200  # refreshed; the result is cached a minute
    result_key = token_session._keys(data["refresh_token"])[1]
    assert caches["default"].get(result_key) is not None
    assert ScalekitSession.objects.filter(session_key=client.session.session_key).exists()

    client.post("/auth/logout/")

    assert caches["default"].get(result_key) is None
    assert ScalekitSession.objects.count() == 0


def test_login_records_the_access_token_lifetime_scalekit_gave(client, sdk, auth_emulator):
    auth_emulator.control.set_token_lifetimes(access_token=1800)
    add_user(sdk, "ada@acme.example")
    login(client, auth_emulator, "ada@acme.example")

    recorded = ScalekitSession.objects.get(session_key=client.session.session_key)

    assert 1800 <= recorded.access_token_lifetime <= 1803  # iat may be backdated a little
    assert recorded.scalekit_session_id == client.session[SESSION_KEY]["claims"]["sid"]


def test_a_certificate_scalekit_is_not_trusted_with_is_named_in_the_log_not_on_the_page(
    client, sdk, auth_emulator, settings, monkeypatch, caplog
):
    """The install without CA_BUNDLE: the emulator's certificate fails verification. The event
    and the log say so and name the setting; the page only says Scalekit could not be reached."""
    add_user(sdk, "ada@acme.example")
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CA_BUNDLE": ""}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")  # this process trusts the emulator: undo it

    with caplog.at_level("WARNING", logger="scalekit_auth"):
        response = login(client, auth_emulator, "ada@acme.example")

    assert response.status_code == 502
    page = response.content.decode()
    assert escape(views.UNREACHABLE_TEXT) in page and "scalekit_unavailable" in page
    for hidden in ("CERTIFICATE_VERIFY_FAILED", "CA_BUNDLE", "ScalekitException"):
        assert hidden not in page
    reason = AuthEvent.objects.get(kind="login", success=False).reason
    assert reason.startswith(
        "scalekit_unavailable: TLS certificate verification failed (CERTIFICATE_VERIFY_FAILED)"
    )
    assert "set SCALEKIT_AUTH['CA_BUNDLE'] to its ca.pem" in reason and reason in caplog.text
    assert "_auth_user_id" not in client.session


def test_a_jwks_scalekit_cannot_serve_is_a_502_with_the_cause_in_the_log(
    client, sdk, auth_emulator
):
    add_user(sdk, "ada@acme.example")
    auth_emulator.control.set_faults(unavailable_ratio=1.0, methods=["/keys"])

    response = login(client, auth_emulator, "ada@acme.example")

    assert response.status_code == 502
    assert escape(views.UNREACHABLE_TEXT) in response.content.decode()
    assert b"token_jwks_unavailable" in response.content and b"HTTPError" not in response.content
    assert AuthEvent.objects.get(kind="login", success=False).reason == (
        "token_jwks_unavailable: HTTPError"
    )
