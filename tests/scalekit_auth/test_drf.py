"""DRF bearer authentication, role and permission classes, organization scoping, and the
function-view decorators, with tokens from real logins through the emulator's hosted page."""

from __future__ import annotations

import time

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from scalekit.v1.commons import commons_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.context import ANONYMOUS, ScalekitContext
from scalekit_auth.models import AuthEvent, ScalekitIdentity
from scalekit_auth.organizations import scope_to_organization
from scalekit_auth.session import SESSION_KEY

from .conftest import add_user, login
from .factories import RolloutSettingsFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.scalekit_auth.urls")]


@pytest.fixture
def rbac(sdk):
    """Permissions and roles created in Scalekit through the SDK, as an operator would."""
    for name in ("invoices:read", "invoices:write"):
        sdk.permissions.create_permission(
            roles_pb2.CreatePermission(name=name, description=f"May {name.split(':')[1]} invoices")
        )
    sdk.roles.create_role(
        roles_pb2.CreateRole(name="finance", display_name="Finance", permissions=["invoices:read"])
    )
    sdk.roles.create_role(
        roles_pb2.CreateRole(
            name="bookkeeper",
            display_name="Bookkeeper",
            permissions=["invoices:read", "invoices:write"],
        )
    )
    return sdk


def browser_login(emulator, email: str) -> Client:
    """A browser (test client) logged in through the hosted login page."""
    browser = Client()
    response = login(browser, emulator, email)
    assert response.status_code == 302, response.content
    return browser


def access_token(browser: Client) -> str:
    """The access token the login stored server side (what a SPA's backend would forward)."""
    return browser.session[SESSION_KEY]["access_token"]


def api_get(path: str, token: str | None = None, **headers: str):
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return Client().get(path, headers=headers)


def resigned(emulator, token: str, **changes) -> str:
    """``token`` with ``changes`` applied, signed again by the environment's real key."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return emulator.keys.sign(claims)


# -- bearer authentication --------------------------------------------------------------------


def test_bearer_token_from_a_real_login_is_the_same_django_user(sdk, auth_emulator):
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["admin"])
    browser = browser_login(auth_emulator, "ada@acme.example")
    session_user_pk = int(browser.session["_auth_user_id"])

    response = api_get("/api/me/", access_token(browser))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_pk"] == session_user_pk
    assert body["username"] == "ada@acme.example"
    assert (body["scalekit_user_id"], body["organization_id"]) == (sk_user.id, org.id)
    assert body["roles"] == ["admin"] and body["same_context"] is True
    assert get_user_model().objects.count() == 1 and ScalekitIdentity.objects.count() == 1


def test_bearer_first_then_browser_login_link_to_one_user(sdk, auth_emulator):
    """An API call with a token before any browser login on this site creates the user; the
    later browser login finds the same account through the linked Scalekit id."""
    _, sk_user = add_user(sdk, "ada@acme.example")
    token = access_token(browser_login(auth_emulator, "ada@acme.example"))
    get_user_model().objects.all().delete()  # as if the token came from another site's login

    first = api_get("/api/me/", token)
    assert first.status_code == 200, first.content
    identity = ScalekitIdentity.objects.get()
    assert identity.scalekit_user_id == sk_user.id and identity.linked_by == "created"

    browser = browser_login(auth_emulator, "ada@acme.example")
    assert int(browser.session["_auth_user_id"]) == first.json()["user_pk"]
    assert get_user_model().objects.count() == 1


def test_steady_state_bearer_requests_make_no_call_to_scalekit(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    token = access_token(browser_login(auth_emulator, "ada@acme.example"))
    assert api_get("/api/me/", token).status_code == 200
    auth_emulator.control.reset_counters()

    for _ in range(5):
        assert api_get("/api/me/", token).status_code == 200

    assert auth_emulator.control.counters()["calls"] == {}


def test_missing_header_gets_401_with_a_bearer_challenge(auth_emulator):
    response = api_get("/api/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer", "Invalid Authorization header: expected 'Bearer <token>'."),
        ("Bearer a b", "Invalid Authorization header: expected 'Bearer <token>'."),
        ("Bearer not-a-jwt", "Invalid token (malformed)."),
        ("bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "Invalid token (bad_algorithm)."),
    ],
)
def test_garbage_headers_are_refused(auth_emulator, header, detail):
    response = Client().get("/api/me/", headers={"authorization": header})
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_other_schemes_are_not_ours_and_get_the_bearer_challenge(auth_emulator):
    response = Client().get("/api/me/", headers={"authorization": "Basic YWRhOnB3"})
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not AuthEvent.objects.exists()  # not a refused token: no token at all


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 420}, "expired"),
        ({"aud": ["skc_another_application"]}, "wrong_audience"),
        ({"iss": "https://other-env.scalekit.example"}, "wrong_issuer"),
    ],
)
def test_refused_tokens_signed_by_the_environment(sdk, auth_emulator, changes, reason):
    """Real tokens of the environment, re-signed with its key, but not for us or not now."""
    add_user(sdk, "ada@acme.example")
    good = access_token(browser_login(auth_emulator, "ada@acme.example"))
    assert api_get("/api/me/", good).status_code == 200

    response = api_get("/api/me/", resigned(auth_emulator, good, **changes))

    assert response.status_code == 401
    assert response.json() == {"detail": f"Invalid token ({reason})."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    event = AuthEvent.objects.get(kind="bearer")
    assert (event.success, event.reason) == (False, f"token refused: {reason}")


def test_tampered_roles_are_refused(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example", roles=["member"])
    token = access_token(browser_login(auth_emulator, "ada@acme.example"))
    header, payload, signature = token.split(".")
    forged_payload = resigned(auth_emulator, token, roles=["admin"]).split(".")[1]

    response = api_get("/api/finance/", f"{header}.{forged_payload}.{signature}")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token (bad_signature)."}


def test_inactive_user_is_refused_even_with_a_valid_token(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    token = access_token(browser_login(auth_emulator, "ada@acme.example"))
    get_user_model().objects.update(is_active=False)

    response = api_get("/api/me/", token)

    assert response.status_code == 401
    assert response.json() == {"detail": "No active user for this token."}


def test_token_of_a_scalekit_user_the_policy_cannot_link_is_refused(sdk, auth_emulator, settings):
    add_user(sdk, "ada@acme.example")
    token = access_token(browser_login(auth_emulator, "ada@acme.example"))
    get_user_model().objects.all().delete()
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "CREATE_USERS": False}

    response = api_get("/api/me/", token)

    assert response.status_code == 401
    assert response.json() == {"detail": "no linked Django user and CREATE_USERS is off"}
    assert not get_user_model().objects.exists()


def test_client_credentials_token_is_not_a_user_token(sdk, auth_emulator):
    management_token = sdk.core_client.access_token

    response = api_get("/api/me/", management_token)

    assert response.status_code == 401
    assert not get_user_model().objects.exists()


# -- role and permission classes ---------------------------------------------------------------


def test_has_role_allows_any_listed_role_and_refuses_others(sdk, rbac, auth_emulator):
    add_user(sdk, "fin@acme.example", roles=["finance"])
    add_user(sdk, "mem@acme.example", roles=["member"])
    finance = access_token(browser_login(auth_emulator, "fin@acme.example"))
    member = access_token(browser_login(auth_emulator, "mem@acme.example"))

    allowed = api_get("/api/finance/", finance)
    refused = api_get("/api/finance/", member)

    assert allowed.status_code == 200 and allowed.json()["roles"] == ["finance"]
    assert refused.status_code == 403
    assert refused.json() == {"detail": "One of these roles is required: finance, admin."}
    assert api_get("/api/finance/").status_code == 401


def test_has_permission_reads_the_permissions_scalekit_put_in_the_token(sdk, rbac, auth_emulator):
    add_user(sdk, "fin@acme.example", roles=["finance"])
    add_user(sdk, "book@acme.example", roles=["bookkeeper"])
    finance = access_token(browser_login(auth_emulator, "fin@acme.example"))
    bookkeeper = access_token(browser_login(auth_emulator, "book@acme.example"))

    assert api_get("/api/invoices/", finance).status_code == 200
    assert api_get("/api/invoices/", bookkeeper).status_code == 200
    # Every listed permission is needed: finance may read but not write.
    refused = api_get("/api/invoices/write/", finance)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "These permissions are required: invoices:read, invoices:write."
    }
    assert api_get("/api/invoices/write/", bookkeeper).status_code == 200


def test_role_given_in_scalekit_after_login_shows_in_the_next_token_only(sdk, rbac, auth_emulator):
    """Permissions come from the token: a role change applies from the next token on."""
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["member"])
    before = access_token(browser_login(auth_emulator, "ada@acme.example"))
    assert api_get("/api/invoices/", before).status_code == 403

    sdk.users.update_membership(
        organization_id=org.id,
        user_id=sk_user.id,
        membership=users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="finance")]),
    )
    after = access_token(browser_login(auth_emulator, "ada@acme.example"))

    assert api_get("/api/invoices/", after).status_code == 200
    assert api_get("/api/invoices/", before).status_code == 403


def test_permission_classes_work_with_session_authentication_too(sdk, rbac, auth_emulator):
    add_user(sdk, "fin@acme.example", roles=["finance"])
    add_user(sdk, "mem@acme.example", roles=["member"])
    finance = browser_login(auth_emulator, "fin@acme.example")
    member = browser_login(auth_emulator, "mem@acme.example")

    response = finance.get("/api/finance/")
    assert response.status_code == 200
    assert response.json() == {
        "user_pk": int(finance.session["_auth_user_id"]),
        "roles": ["finance"],
    }
    assert finance.get("/api/invoices/").status_code == 200
    assert member.get("/api/finance/").status_code == 403
    assert member.get("/api/invoices/").status_code == 403


# -- organization scoping ----------------------------------------------------------------------


def test_querysets_are_scoped_to_the_callers_organization(sdk, auth_emulator):
    acme, ada = add_user(sdk, "ada@acme.example", org_external_id="acme")
    _, bob = add_user(sdk, "bob@acme.example", org_external_id="acme")
    globex, gus = add_user(sdk, "gus@globex.example", org_external_id="globex")
    tokens_by_email = {
        email: access_token(browser_login(auth_emulator, email))
        for email in ("ada@acme.example", "bob@acme.example", "gus@globex.example")
    }

    acme_view = api_get("/api/identities/", tokens_by_email["ada@acme.example"]).json()
    globex_view = api_get("/api/identities/", tokens_by_email["gus@globex.example"]).json()

    assert sorted(row["scalekit_user_id"] for row in acme_view) == sorted([ada.id, bob.id])
    assert {row["organization_id"] for row in acme_view} == {acme.id}
    assert globex_view == [{"scalekit_user_id": gus.id, "organization_id": globex.id}]


def test_organization_field_override_on_the_view(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example", org_external_id="acme")
    add_user(sdk, "gus@globex.example", org_external_id="globex")
    ada = access_token(browser_login(auth_emulator, "ada@acme.example"))
    access_token(browser_login(auth_emulator, "gus@globex.example"))

    response = api_get("/api/users/", ada)

    assert response.status_code == 200
    assert [row["username"] for row in response.json()] == ["ada@acme.example"]


def test_scope_to_organization_without_an_organization_is_empty(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    browser_login(auth_emulator, "ada@acme.example")
    request = RequestFactory().get("/")
    queryset = ScalekitIdentity.objects.all()

    request.scalekit = ANONYMOUS
    assert list(scope_to_organization(queryset, request)) == []
    request.scalekit = ScalekitContext(user_id="usr_1")  # a user outside any organization
    assert list(scope_to_organization(queryset, request)) == []
    request.scalekit = ScalekitContext(user_id="usr_1", organization_id="org_someone_else")
    assert list(scope_to_organization(queryset, request)) == []
    request.scalekit = ScalekitContext(
        user_id="usr_1", organization_id=ScalekitIdentity.objects.get().organization_id
    )
    assert list(scope_to_organization(queryset, request)) == [ScalekitIdentity.objects.get()]


# -- function-view decorators --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/pages/admin/", "/pages/invoices/"])
def test_decorators_send_anonymous_html_to_the_login(auth_emulator, path):
    response = Client().get(path, {"tab": "2"}, headers={"accept": "text/html"})
    assert response.status_code == 302
    assert response["Location"] == f"/auth/login/?next={path}%3Ftab%3D2"


@pytest.mark.parametrize(
    "headers", [{"accept": "application/json"}, {"x-requested-with": "XMLHttpRequest"}]
)
@pytest.mark.parametrize("path", ["/pages/admin/", "/pages/invoices/"])
def test_decorators_give_anonymous_json_a_401(auth_emulator, path, headers):
    response = Client().get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required."}


def test_role_required(sdk, auth_emulator):
    add_user(sdk, "boss@acme.example", roles=["admin"])
    _, member_user = add_user(sdk, "mem@acme.example", roles=["member"])
    admin = browser_login(auth_emulator, "boss@acme.example")
    member = browser_login(auth_emulator, "mem@acme.example")

    assert member.get("/pages/admin/").status_code == 403
    response = admin.get("/pages/admin/")
    assert response.status_code == 200
    assert response.content.decode().startswith("admin page for usr_")
    assert member_user.id not in response.content.decode()


def test_permission_required(sdk, rbac, auth_emulator):
    acme, _ = add_user(sdk, "fin@acme.example", roles=["finance"])
    add_user(sdk, "book@acme.example", roles=["bookkeeper"])
    add_user(sdk, "boss@acme.example", roles=["admin"])  # a role, but not these permissions
    finance = browser_login(auth_emulator, "fin@acme.example")
    bookkeeper = browser_login(auth_emulator, "book@acme.example")
    admin = browser_login(auth_emulator, "boss@acme.example")

    response = finance.get("/pages/invoices/")
    assert response.status_code == 200
    assert response.json() == {"invoices": [], "organization_id": acme.id}
    assert finance.get("/pages/invoices/edit/").status_code == 403
    assert bookkeeper.get("/pages/invoices/edit/").status_code == 200
    assert admin.get("/pages/invoices/").status_code == 403


def test_decorators_do_not_trust_a_bearer_header_on_plain_views(sdk, auth_emulator):
    """The decorators read the session identity; a bearer token is for the DRF views only."""
    add_user(sdk, "boss@acme.example", roles=["admin"])
    token = access_token(browser_login(auth_emulator, "boss@acme.example"))
    response = api_get("/pages/admin/", token, accept="application/json")
    assert response.status_code == 401


def test_decorated_views_keep_their_names():
    from tests.scalekit_auth import urls

    assert urls.admin_page.__name__ == "admin_page"
    assert urls.invoice_editor.__wrapped__.__name__ == "invoice_editor"


def test_logged_out_session_loses_access(sdk, auth_emulator):
    add_user(sdk, "boss@acme.example", roles=["admin"])
    admin = browser_login(auth_emulator, "boss@acme.example")
    assert admin.get("/pages/admin/").status_code == 200
    admin.post("/auth/logout/")
    assert admin.get("/pages/admin/")["Location"].startswith("/auth/login/")


# -- what a browser session and an ID token cannot do -----------------------------------------


def test_a_session_cookie_does_not_pass_a_bearer_only_view(sdk, auth_emulator):
    """The permission classes read the identity DRF authenticated, not the middleware's: a
    logged-in browser (no bearer header, no CSRF token) is anonymous on a bearer-only view."""
    add_user(sdk, "ada@acme.example", roles=["admin"])
    browser = browser_login(auth_emulator, "ada@acme.example")
    browser_csrf = Client(enforce_csrf_checks=True)
    browser_csrf.cookies = browser.cookies

    assert browser.get("/api/bearer-only/").status_code == 401
    assert browser_csrf.post("/api/bearer-only/").status_code == 401
    assert api_get("/api/bearer-only/", access_token(browser)).status_code == 200
    # Where SessionAuthentication is accepted, DRF enforces CSRF on the session's unsafe requests.
    assert browser_csrf.get("/api/finance/").status_code == 200
    refused = browser_csrf.post("/api/finance/")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def test_an_id_token_is_not_a_bearer_token(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example", roles=["admin"])
    browser = browser_login(auth_emulator, "ada@acme.example")
    id_token = browser.session[SESSION_KEY]["id_token"]

    response = api_get("/api/me/", id_token)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token (not_an_access_token)."}
    assert api_get("/api/me/", access_token(browser)).status_code == 200


def test_the_kill_switch_refuses_bearer_tokens_at_once(sdk, auth_emulator):
    add_user(sdk, "ada@acme.example")
    token = access_token(browser_login(auth_emulator, "ada@acme.example"))
    assert api_get("/api/me/", token).status_code == 200

    row = RolloutSettingsFactory(enabled=False)
    refused = api_get("/api/me/", token)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Scalekit sign-in is switched off on this site (rollback)."
    assert AuthEvent.objects.filter(kind="bearer", success=False, reason="kill switch").exists()

    row.enabled = True
    row.save()
    assert api_get("/api/me/", token).status_code == 200
