"""The real SDK (``ScalekitClient``) against the running emulator, over its real TLS port: every
directory RPC the SDK calls, the statuses it answers and the SDK exceptions they become."""

from __future__ import annotations

import shutil

import grpc
import pytest
import requests
from google.protobuf import field_mask_pb2
from scalekit import ScalekitClient
from scalekit.common.exceptions import (
    ScalekitBadRequestException,
    ScalekitConflictException,
    ScalekitNotFoundException,
    ScalekitNotImplementedException,
)
from scalekit.v1.commons import commons_pb2
from scalekit.v1.errdetails import errdetails_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.emulator.roles import ROLE_STILL_ASSIGNED
from scalekit_auth.emulator.testing import start_emulator

from .directory_factories import (
    CreateOrganizationFactory,
    CreatePermissionFactory,
    CreateRoleFactory,
    CreateUserFactory,
    membership,
)


def error_info(exc) -> errdetails_pb2.ErrorInfo:
    info = errdetails_pb2.ErrorInfo()
    assert exc.err_details, "the status carries no ErrorInfo"
    exc.err_details[0].Unpack(info)
    return info


def violations(exc) -> list[tuple[str, str]]:
    return [(v.field, v.constraint) for v in error_info(exc).validation_error_info.field_violations]


def create_org(sdk, **fields) -> organizations_pb2.Organization:
    return sdk.organization.create_organization(CreateOrganizationFactory(**fields))[0].organization


def create_user(sdk, org_id: str, *roles: str, invite: bool = False, **fields) -> users_pb2.User:
    spec = CreateUserFactory(**fields)
    if roles:
        spec.membership.CopyFrom(membership(*roles))
    return sdk.users.create_user_and_membership(org_id, spec, send_invitation_email=invite)[0].user


# --- organizations --------------------------------------------------------------------------


def test_create_and_get_an_organization_by_id_and_external_id(sdk):
    created = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(
            display_name="Acme", external_id="acme", metadata={"plan": "enterprise"}
        )
    )
    org, call = created
    assert call.code() == grpc.StatusCode.OK
    assert org.organization.id.startswith("org_") and org.organization.create_time.seconds > 0
    assert org.organization.region_code == commons_pb2.US
    assert (
        sdk.organization.get_organization(org.organization.id)[0].organization == org.organization
    )
    by_external = sdk.organization.get_organization_by_external_id("acme")[0].organization
    assert by_external == org.organization
    assert dict(by_external.metadata) == {"plan": "enterprise"}
    # The dedicated RPC the SDK does not use answers the same, through the SDK's own channel.
    response, _ = sdk.core_client.grpc_exec(
        sdk.organization.organization_service.GetOrganizationByExternalId.with_call,
        organizations_pb2.GetOrganizationRequest(external_id="acme"),
    )
    assert response.organization == org.organization


def test_unknown_organization_is_not_found(sdk):
    with pytest.raises(ScalekitNotFoundException) as excinfo:
        sdk.organization.get_organization("org_000000000000000042")
    assert excinfo.value.message == 'organization "org_000000000000000042" not found'
    assert excinfo.value.error_code == "NOT_FOUND"
    with pytest.raises(ScalekitNotFoundException, match="nope"):
        sdk.organization.get_organization_by_external_id("nope")


def test_duplicate_external_id_is_a_bad_request_by_default_and_a_conflict_when_set(
    sdk, fresh_emulator
):
    create_org(sdk, external_id="acme")
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        create_org(sdk, external_id="acme")
    assert excinfo.value.message == 'organization with external_id "acme" already exists'
    fresh_emulator.directory.duplicate_status["organization_external_id"] = (
        grpc.StatusCode.ALREADY_EXISTS
    )
    with pytest.raises(ScalekitConflictException):
        create_org(sdk, external_id="acme")
    assert sdk.organization.list_organizations(page_size=10)[0].total_size == 1


def test_invalid_organization_is_refused_field_by_field_and_valid_ones_still_go_through(sdk):
    too_many = {f"key{i}": "value" for i in range(11)}
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        sdk.organization.create_organization(
            organizations_pb2.CreateOrganization(display_name="", metadata=too_many)
        )
    error = excinfo.value
    assert error.grpc_status == grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_code == "INVALID_ARGUMENT"
    assert violations(error) == [
        ("organization.display_name", "string.min_len"),
        ("organization.metadata", "map.max_pairs"),
    ]
    assert "organization.metadata: map must be at most 10 entries" in error.message
    assert create_org(sdk, metadata={"key0": "value"}).metadata["key0"] == "value"


def test_list_organizations_pages_through_everything_once(sdk):
    created = [create_org(sdk).id for _ in range(23)]
    seen, token, pages = [], None, 0
    while True:
        response = sdk.organization.list_organizations(page_size=10, page_token=token)[0]
        pages += 1
        assert response.total_size == 23
        seen.extend(o.id for o in response.organizations)
        token = response.next_page_token
        if not token:
            break
    assert pages == 3 and seen == created
    back = sdk.organization.list_organizations(page_size=10, page_token=response.prev_page_token)
    assert [o.id for o in back[0].organizations] == created[10:20]
    with pytest.raises(ScalekitBadRequestException, match="is not a token of this list"):
        sdk.organization.list_organizations(page_size=10, page_token="forged")


def test_update_organization_by_id_and_external_id(sdk):
    org = create_org(sdk, display_name="Acme", external_id="acme")
    renamed = sdk.organization.update_organization(
        org.id, organizations_pb2.UpdateOrganization(display_name="Acme Corp")
    )[0].organization
    assert renamed.display_name == "Acme Corp" and renamed.external_id == "acme"
    moved = sdk.organization.update_organization_by_external_id(
        "acme",
        organizations_pb2.UpdateOrganization(external_id="acme-eu", metadata={"region": "eu"}),
    )[0].organization
    assert moved.display_name == "Acme Corp" and moved.external_id == "acme-eu"
    assert sdk.organization.get_organization_by_external_id("acme-eu")[0].organization.id == org.id
    other = create_org(sdk)
    with pytest.raises(ScalekitBadRequestException, match='"acme-eu" already exists'):
        sdk.organization.update_organization(
            other.id, organizations_pb2.UpdateOrganization(external_id="acme-eu")
        )
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        sdk.organization.update_organization(
            org.id, organizations_pb2.UpdateOrganization(display_name="")
        )
    assert violations(excinfo.value) == [("organization.display_name", "string.min_len")]
    masked, _ = sdk.core_client.grpc_exec(
        sdk.organization.organization_service.UpdateOrganization.with_call,
        organizations_pb2.UpdateOrganizationRequest(
            id=org.id,
            organization=organizations_pb2.UpdateOrganization(),
            update_mask=field_mask_pb2.FieldMask(paths=["metadata"]),
        ),
    )
    assert dict(masked.organization.metadata) == {}


def test_delete_organization_and_settings(sdk):
    org = create_org(sdk)
    updated = sdk.organization.update_organization_settings(
        org.id, [{"name": "sso", "enabled": True}, {"name": "dir_sync", "enabled": False}]
    )[0].organization
    assert {f.name: f.enabled for f in updated.settings.features} == {
        "sso": True,
        "dir_sync": False,
    }
    sdk.organization.delete_organization(org.id)
    with pytest.raises(ScalekitNotFoundException):
        sdk.organization.get_organization(org.id)
    with pytest.raises(ScalekitNotFoundException):
        sdk.organization.delete_organization(org.id)


def test_rpcs_the_emulator_does_not_serve_are_unimplemented(sdk):
    org = create_org(sdk)
    with pytest.raises(ScalekitNotImplementedException):
        sdk.organization.generate_portal_link(org.id)


# --- users and memberships -----------------------------------------------------------------


def test_create_user_and_membership_with_every_field(sdk, fresh_emulator):
    org = create_org(sdk, display_name="Acme")
    user = sdk.users.create_user_and_membership(
        org.id,
        users_pb2.CreateUser(
            email="ada@acme.example",
            external_id="legacy-42",
            metadata={"source": "legacy"},
            user_profile=users_pb2.CreateUserProfile(
                given_name="Ada", family_name="Lovelace", locale="en-GB", groups=["eng"]
            ),
            membership=users_pb2.CreateMembership(
                roles=[commons_pb2.Role(name="member")], metadata={"team": "core"}
            ),
        ),
        send_invitation_email=False,
    )[0].user
    assert user.id.startswith("usr_") and user.external_id == "legacy-42"
    assert dict(user.metadata) == {"source": "legacy"}
    profile = user.user_profile
    assert (profile.given_name, profile.family_name, profile.name) == (
        "Ada",
        "Lovelace",
        "Ada Lovelace",
    )
    assert profile.locale == "en-GB" and list(profile.groups) == ["eng"]
    assert profile.email_verified is True
    (member,) = user.memberships
    assert member.organization_id == org.id and member.display_name == "Acme"
    assert member.membership_status == commons_pb2.ACTIVE
    assert dict(member.metadata) == {"team": "core"}
    role = sdk.roles.get_role("member")[0].role
    assert list(member.roles) == [
        commons_pb2.Role(id=role.id, name="member", display_name=role.display_name)
    ]
    assert fresh_emulator.directory.invitation_emails == []


def test_the_sdk_default_sends_an_invitation_and_the_first_member_is_admin(sdk, fresh_emulator):
    org = create_org(sdk)
    first = sdk.users.create_user_and_membership(
        org.id, users_pb2.CreateUser(email="first@example.test")
    )[0].user
    second = create_user(sdk, org.id, invite=False)
    assert first.memberships[0].membership_status == commons_pb2.PENDING_INVITE
    assert first.user_profile.email_verified is False
    assert [r.name for r in first.memberships[0].roles] == ["admin"]
    assert [r.name for r in second.memberships[0].roles] == ["member"]
    emails = fresh_emulator.directory.invitation_emails
    assert [(e["to"], e["organization_id"]) for e in emails] == [("first@example.test", org.id)]
    invite = sdk.users.resend_invite(org.id, first.id)[0].invite
    assert invite.resent_count == 1 and len(emails) == 2


def test_duplicate_users_are_refused_with_the_configured_status(sdk, fresh_emulator):
    org = create_org(sdk)
    create_user(sdk, org.id, email="ada@example.test", external_id="legacy-1")
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        create_user(sdk, org.id, email="ADA@example.test")
    assert excinfo.value.message == 'user with email "ADA@example.test" already exists'
    fresh_emulator.directory.duplicate_status["user_external_id"] = grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(ScalekitConflictException, match='external_id "legacy-1" already exists'):
        create_user(sdk, org.id, external_id="legacy-1")
    assert sdk.users.list_users()[0].total_size == 1


def test_bad_user_input_is_specific(sdk):
    org = create_org(sdk)
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        create_user(sdk, org.id, email="not-an-email", metadata={"ab": "x"})
    assert violations(excinfo.value) == [
        ("user.email", "string.email"),
        ('user.metadata["ab"]', "string.min_len"),
    ]
    with pytest.raises(ScalekitNotFoundException, match='organization "org_000000000000000042"'):
        create_user(sdk, "org_000000000000000042")
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        sdk.users.update_user("usr_1", users_pb2.UpdateUser())
    assert violations(excinfo.value) == [("id", "string.min_len")]


def test_get_update_and_delete_users_by_id_and_external_id(sdk):
    org = create_org(sdk)
    user = create_user(sdk, org.id, external_id="legacy-7")
    assert sdk.users.get_user(user.id)[0].user == user
    assert sdk.users.get_user_by_external_id("legacy-7")[0].user == user
    updated = sdk.users.update_user(
        user.id,
        users_pb2.UpdateUser(
            user_profile=users_pb2.UpdateUserProfile(family_name="Byron"),
            metadata={"tier": "gold"},
        ),
    )[0].user
    assert updated.user_profile.family_name == "Byron"
    assert updated.user_profile.given_name == user.user_profile.given_name
    assert dict(updated.metadata) == {"tier": "gold"}
    relinked = sdk.users.update_user_by_external_id(
        "legacy-7", users_pb2.UpdateUser(external_id="legacy-8")
    )[0].user
    assert relinked.external_id == "legacy-8"
    with pytest.raises(ScalekitNotFoundException, match='external_id "legacy-7" not found'):
        sdk.users.get_user_by_external_id("legacy-7")
    sdk.users.delete_user_by_external_id("legacy-8")
    with pytest.raises(ScalekitNotFoundException, match=f'user "{user.id}" not found'):
        sdk.users.get_user(user.id)
    other = create_user(sdk, org.id)
    sdk.users.delete_user(other.id)
    assert sdk.users.list_users()[0].total_size == 0


def test_list_users_and_organization_users_paginate(sdk):
    acme, globex = create_org(sdk), create_org(sdk)
    acme_users = [create_user(sdk, acme.id).id for _ in range(12)]
    globex_users = [create_user(sdk, globex.id).id for _ in range(3)]

    def collect(fetch) -> list[str]:
        ids, token = [], None
        while True:
            page = fetch(token)[0]
            ids.extend(u.id for u in page.users)
            token = page.next_page_token
            if not token:
                return ids

    assert collect(lambda t: sdk.users.list_users(page_size=5, page_token=t)) == (
        acme_users + globex_users
    )
    assert collect(lambda t: sdk.users.list_organization_users(acme.id, 5, t)) == acme_users
    page = sdk.users.list_organization_users(globex.id, page_size=5)[0]
    assert [u.id for u in page.users] == globex_users and page.total_size == 3
    assert page.next_page_token == ""


def test_memberships_by_id_and_external_id(sdk, fresh_emulator):
    acme, globex = create_org(sdk), create_org(sdk)
    user = create_user(sdk, acme.id, external_id="legacy-1")
    joined = sdk.users.create_membership(
        globex.id, user.id, membership("member", team="ops"), send_invitation_email=False
    )[0].user
    assert [m.organization_id for m in joined.memberships] == [acme.id, globex.id]
    assert fresh_emulator.directory.invitation_emails == []
    with pytest.raises(ScalekitBadRequestException, match="membership of user .* already exists"):
        sdk.users.create_membership_by_external_id(globex.id, "legacy-1", membership())
    promoted = sdk.users.update_membership_by_external_id(
        globex.id,
        "legacy-1",
        users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="admin")]),
    )[0].user
    assert [r.name for r in promoted.memberships[1].roles] == ["admin"]
    assert [r.name for r in sdk.users.list_user_roles(globex.id, user.id)[0].roles] == ["admin"]
    sdk.users.delete_membership(acme.id, user.id)
    remaining = sdk.users.get_user(user.id)[0].user
    assert [m.organization_id for m in remaining.memberships] == [globex.id]
    # The last membership goes: cascade (the default) deletes the user too.
    sdk.users.delete_membership_by_external_id(globex.id, "legacy-1")
    with pytest.raises(ScalekitNotFoundException):
        sdk.users.get_user(user.id)
    with pytest.raises(ScalekitNotFoundException, match="not a member"):
        sdk.users.update_membership(
            acme.id, create_user(sdk, globex.id).id, users_pb2.UpdateMembership()
        )


def test_a_membership_naming_an_unknown_role_is_not_found(sdk, fresh_emulator):
    org = create_org(sdk)
    with pytest.raises(ScalekitNotFoundException, match='role "admn" not found'):
        create_user(sdk, org.id, "admn")
    assert fresh_emulator.directory.counts()["users"] == 0
    user = create_user(sdk, org.id, "admin")
    with pytest.raises(ScalekitNotFoundException, match='role "admn" not found'):
        sdk.users.update_membership(
            org.id, user.id, users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="admn")])
        )
    assert [r.name for r in sdk.users.get_user(user.id)[0].user.memberships[0].roles] == ["admin"]


# --- roles and permissions ------------------------------------------------------------------


def test_permissions_crud_and_pagination(sdk):
    names = [f"docs{i}:read" for i in range(12)]
    for name in names:
        created = sdk.permissions.create_permission(CreatePermissionFactory(name=name))
        assert created[0].permission.id.startswith("perm_")
    with pytest.raises(ScalekitBadRequestException, match="duplicate key not allowed"):
        sdk.permissions.create_permission(CreatePermissionFactory(name="docs0:read"))
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        sdk.permissions.create_permission(roles_pb2.CreatePermission(name="docs read"))
    assert violations(excinfo.value) == [("permission.name", "permission.name.format")]
    first = sdk.permissions.list_permissions(page_size=10)[0]
    second = sdk.permissions.list_permissions(page_token=first.next_page_token, page_size=10)[0]
    assert [p.name for p in first.permissions] + [p.name for p in second.permissions] == names
    assert first.total_size == 12 and second.next_page_token == ""
    updated = sdk.permissions.update_permission(
        "docs0:read", roles_pb2.CreatePermission(name="docs0:read", description="Read docs")
    )[0].permission
    assert sdk.permissions.get_permission("docs0:read")[0].permission == updated
    sdk.permissions.delete_permission("docs0:read")
    with pytest.raises(ScalekitNotFoundException, match='permission "docs0:read" not found'):
        sdk.permissions.get_permission("docs0:read")


def test_roles_with_permissions_and_inheritance(sdk):
    for name in ("docs:read", "docs:write", "docs:delete"):
        sdk.permissions.create_permission(CreatePermissionFactory(name=name))
    reader = sdk.roles.create_role(
        CreateRoleFactory(name="reader", display_name="Reader", permissions=["docs:read"])
    )[0].role
    assert reader.id.startswith("role_") and reader.display_name == "Reader"
    sdk.roles.create_role(
        CreateRoleFactory(name="editor", extends="reader", permissions=["docs:write"])
    )
    assert {r.name for r in sdk.roles.list_roles()[0].roles} == {
        "admin",
        "member",
        "reader",
        "editor",
    }
    editor = sdk.roles.get_role("editor")[0].role
    assert editor.extends == "reader" and list(editor.permissions) == []
    assert sdk.roles.get_role("reader")[0].role.dependent_roles_count == 1

    def names(response) -> list[str]:
        return [p.name for p in response[0].permissions]

    assert names(sdk.permissions.list_role_permissions("editor")) == ["docs:write"]
    assert names(sdk.permissions.list_effective_role_permissions("editor")) == [
        "docs:write",
        "docs:read",
    ]
    assert names(sdk.permissions.add_permissions_to_role("editor", ["docs:delete"])) == [
        "docs:write",
        "docs:delete",
    ]
    sdk.permissions.remove_permission_from_role("editor", "docs:write")
    assert names(sdk.permissions.list_role_permissions("editor")) == ["docs:delete"]
    updated = sdk.roles.update_role(
        "editor", roles_pb2.UpdateRole(display_name="Editor", permissions=["docs:write"])
    )[0].role
    assert updated.display_name == "Editor"
    assert [p.name for p in updated.permissions] == ["docs:write"]
    assert [r.name for r in sdk.roles.list_dependent_roles("reader")[0].roles] == ["editor"]
    sdk.roles.delete_role_base("editor")
    assert not sdk.roles.get_role("editor")[0].role.HasField("extends")
    with pytest.raises(ScalekitBadRequestException, match="duplicate key not allowed"):
        sdk.roles.create_role(CreateRoleFactory(name="reader"))
    with pytest.raises(ScalekitNotFoundException, match='"ghost:read"'):
        sdk.roles.create_role(CreateRoleFactory(permissions=["ghost:read"]))


def test_a_role_assigned_to_users_cannot_be_deleted_without_reassignment(sdk):
    sdk.permissions.create_permission(CreatePermissionFactory(name="reports:read"))
    sdk.roles.create_role(CreateRoleFactory(name="auditor", permissions=["reports:read"]))
    org = create_org(sdk)
    user = create_user(sdk, org.id, "auditor")
    assert list(user.memberships[0].permissions) == ["reports:read"]
    perms = sdk.users.list_user_permissions(org.id, user.id)[0].permissions
    assert [p.name for p in perms] == ["reports:read"]
    assert sdk.roles.get_role_users_count("auditor")[0].count == 1
    with pytest.raises(ScalekitBadRequestException) as excinfo:
        sdk.roles.delete_role("auditor")
    assert excinfo.value.message == ROLE_STILL_ASSIGNED
    assert excinfo.value.grpc_status == grpc.StatusCode.FAILED_PRECONDITION
    sdk.roles.delete_role("auditor", reassign_role_name="member")
    assert [r.name for r in sdk.users.get_user(user.id)[0].user.memberships[0].roles] == ["member"]
    with pytest.raises(ScalekitNotFoundException):
        sdk.roles.get_role("auditor")


def test_default_roles_decide_what_a_membership_without_roles_gets(sdk):
    sdk.roles.create_role(CreateRoleFactory(name="owner"))
    sdk.roles.create_role(CreateRoleFactory(name="guest"))
    response = sdk.roles.update_default_roles(
        default_creator_role="owner", default_member_role="guest"
    )[0]
    assert (response.default_creator.name, response.default_member.name) == ("owner", "guest")
    org = create_org(sdk)
    assert [r.name for r in create_user(sdk, org.id).memberships[0].roles] == ["owner"]
    assert [r.name for r in create_user(sdk, org.id).memberships[0].roles] == ["guest"]


# --- persistence ----------------------------------------------------------------------------


def published_kids(emulator) -> list[str]:
    keys = requests.get(f"{emulator.url}/keys", verify=emulator.ca_path, timeout=5).json()["keys"]
    return [key["kid"] for key in keys]


def test_state_survives_an_emulator_restart(emulator, tmp_path):
    # Reuse the session emulator's certificates: this process trusts only that CA.
    for name in ("ca.pem", "server.pem", "server.key"):
        shutil.copy(emulator.ca_path.parent / name, tmp_path / name)
    with start_emulator(state_dir=tmp_path, persist=True) as first:
        client = ScalekitClient(first.url, first.client_id, first.client_secret)
        org = create_org(client, external_id="acme")
        user = create_user(client, org.id, external_id="legacy-1")
        client.permissions.create_permission(CreatePermissionFactory(name="docs:read"))
        registered = first.control.register_uris(
            ["https://app.example.test/cb"], ["https://app.example.test/"]
        )
        first_kids = published_kids(first)
        token = client.core_client.access_token
    with start_emulator(state_dir=tmp_path, persist=True) as second:
        client = ScalekitClient(second.url, second.client_id, second.client_secret)
        # The same signing key: it publishes the same kid, and a token from before still verifies.
        assert published_kids(second) == first_kids
        assert client.validate_access_token(token)
        assert second.control.register_uris() == registered
        assert client.organization.get_organization_by_external_id("acme")[0].organization == org
        assert client.users.get_user_by_external_id("legacy-1")[0].user == user
        assert client.permissions.get_permission("docs:read")[0].permission.name == "docs:read"
        with pytest.raises(ScalekitBadRequestException, match="already exists"):
            create_user(client, org.id, email=user.email)
