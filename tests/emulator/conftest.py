from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.users import users_pb2

CALLBACK = "https://app.example.test/auth/callback/"
AFTER_LOGOUT = "https://app.example.test/"


@pytest.fixture
def org_and_user(sdk):
    """An organization with one member (an admin), created through the SDK."""
    org = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme-1")
    )[0].organization
    user = sdk.users.create_user_and_membership(
        org.id,
        users_pb2.CreateUser(
            email="ada@acme.example",
            external_id="legacy-42",
            user_profile=users_pb2.CreateUserProfile(given_name="Ada", family_name="Lovelace"),
            membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="admin")]),
        ),
        send_invitation_email=False,
    )[0].user
    return org, user


@pytest.fixture
def registered(fresh_emulator):
    fresh_emulator.control.register_uris([CALLBACK], [AFTER_LOGOUT])
    return fresh_emulator


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge
