from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth import rollout, tokens
from scalekit_auth.emulator.testing import emulator_settings, hosted_login

CALLBACK = "http://testserver/auth/callback/"
AFTER_LOGOUT = "http://testserver/"


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty default cache (event throttle, refresh results, JWKS)."""
    from django.core.cache import caches

    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def auth_emulator(fresh_emulator, settings):
    """The emulator with this site's URIs registered, and SCALEKIT_AUTH pointing at it."""
    fresh_emulator.control.register_uris(
        [CALLBACK], [AFTER_LOGOUT], "http://testserver/auth/login/"
    )
    settings.SCALEKIT_AUTH = {
        **settings.SCALEKIT_AUTH,
        **emulator_settings(fresh_emulator),
        "POST_LOGOUT_REDIRECT_URI": AFTER_LOGOUT,
        "WEBHOOK_SECRET": "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA==",
    }
    tokens.keys.clear()
    tokens.claims_cache.clear()
    rollout.forget()
    yield fresh_emulator
    tokens.keys.clear()
    tokens.claims_cache.clear()
    rollout.forget()


def add_user(
    sdk,
    email: str,
    *,
    org_external_id: str = "acme",
    roles=("member",),
    external_id: str = "",
    given_name: str = "Ada",
    family_name: str = "Lovelace",
):
    """An organization (created once) and a member in Scalekit; returns (org, user) protos."""
    try:
        org = sdk.organization.get_organization_by_external_id(org_external_id)[0].organization
    except Exception:
        org = sdk.organization.create_organization(
            organizations_pb2.CreateOrganization(
                display_name=org_external_id.title(), external_id=org_external_id
            )
        )[0].organization
    user = users_pb2.CreateUser(
        email=email,
        user_profile=users_pb2.CreateUserProfile(given_name=given_name, family_name=family_name),
        membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name=r) for r in roles]),
    )
    if external_id:
        user.external_id = external_id
    created = sdk.users.create_user_and_membership(org.id, user, send_invitation_email=False)[
        0
    ].user
    return org, created


def start(client, **params):
    """GET the login view; returns the URL of Scalekit's authorize endpoint it redirects to."""
    response = client.get("/auth/login/", params)
    assert response.status_code == 302, response.content
    return response["Location"]


def finish(client, emulator, authorize_url: str, email: str):
    """Log in at the emulator's hosted page and follow the redirect back to our callback."""
    location = hosted_login(authorize_url, email, ca_path=emulator.ca_path)
    assert location.startswith(CALLBACK), location
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}")


def login(client, emulator, email: str, **params):
    return finish(client, emulator, start(client, **params), email)
