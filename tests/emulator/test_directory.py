"""The directory and its persistence store, called directly (no server): fast unit tests."""

from __future__ import annotations

import sqlite3
import threading

import grpc
import pytest
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.emulator.directory import DIRECTORY_KINDS, Directory, Event
from scalekit_auth.emulator.errors import EmulatorError
from scalekit_auth.emulator.persistence import SqlitePersistence
from scalekit_auth.emulator.roles import ROLE_STILL_ASSIGNED

from .directory_factories import (
    CreateOrganizationFactory,
    CreatePermissionFactory,
    CreateRoleFactory,
    CreateUserFactory,
    membership,
)


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def org(directory):
    return directory.create_organization(CreateOrganizationFactory(external_id="acme"))


def add_user(directory, org, *roles, invite=False, **fields):
    spec = CreateUserFactory(**fields)
    if roles:
        spec.membership.CopyFrom(membership(*roles))
    return directory.create_user_and_membership(org.id, spec, send_invitation_email=invite)


# --- persistence ----------------------------------------------------------------------------


def test_persistence_round_trip_by_kind(tmp_path):
    store = SqlitePersistence(tmp_path / "state" / "emulator.sqlite3")
    store.save("a", "k2", b"two")
    store.save("a", "k1", b"one")
    store.save("b", "k1", b"other kind")
    store.save("a", "k2", b"two, replaced")
    store.save_many("c", [("x", b"1"), ("y", b"2")])
    assert list(store.load("a")) == [("k1", b"one"), ("k2", b"two, replaced")]
    store.delete("a", "k1")
    assert list(store.load("a")) == [("k2", b"two, replaced")]
    store.clear(["a"])
    assert list(store.load("a")) == []
    assert list(store.load("b")) == [("k1", b"other kind")]
    store.close()

    reopened = SqlitePersistence(tmp_path / "state" / "emulator.sqlite3")
    assert list(reopened.load("c")) == [("x", b"1"), ("y", b"2")]
    reopened.clear()
    assert list(reopened.load("b")) == [] and list(reopened.load("c")) == []
    reopened.close()
    with sqlite3.connect(tmp_path / "state" / "emulator.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_persistence_is_safe_across_threads_and_refuses_use_after_close(tmp_path):
    store = SqlitePersistence(tmp_path / "emulator.sqlite3")

    def writer(n: int) -> None:
        for i in range(100):
            store.save("t", f"{n}-{i}", b"x")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list(store.load("t"))) == 800
    store.close()
    with pytest.raises(RuntimeError, match="emulator.sqlite3 is closed"):
        store.save("t", "late", b"x")


# --- organizations --------------------------------------------------------------------------


def test_organizations_are_indexed_by_id_and_external_id(directory, org):
    assert org.id.startswith("org_") and len(org.id) == 22
    assert directory.get_organization(org.id) == org
    assert directory.get_organization_by_external_id("acme") == org
    assert directory.get_organization("org_000000000000000000") is None
    with pytest.raises(EmulatorError) as excinfo:
        directory.require_organization(external_id="nope")
    assert excinfo.value.code == grpc.StatusCode.NOT_FOUND
    assert excinfo.value.message == 'organization with external_id "nope" not found'


def test_duplicate_external_id_status_is_configurable(directory, org):
    with pytest.raises(EmulatorError) as excinfo:
        directory.create_organization(CreateOrganizationFactory(external_id="acme"))
    assert excinfo.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert excinfo.value.message == 'organization with external_id "acme" already exists'
    directory.duplicate_status["organization_external_id"] = grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(EmulatorError) as excinfo:
        directory.create_organization(CreateOrganizationFactory(external_id="acme"))
    assert excinfo.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert directory.counts()["organizations"] == 1


def test_update_organization_honours_presence_and_the_external_id_index(directory, org):
    update = organizations_pb2.UpdateOrganization(external_id="acme-2", metadata={"plan": "pro"})
    updated = directory.update_organization(update, org_id=org.id)
    assert updated.display_name == org.display_name  # absent: kept
    assert updated.external_id == "acme-2" and dict(updated.metadata) == {"plan": "pro"}
    assert directory.get_organization_by_external_id("acme") is None
    assert directory.get_organization_by_external_id("acme-2").id == org.id
    other = directory.create_organization(CreateOrganizationFactory())
    with pytest.raises(EmulatorError, match='external_id "acme-2" already exists'):
        directory.update_organization(
            organizations_pb2.UpdateOrganization(external_id="acme-2"), org_id=other.id
        )
    masked = directory.update_organization(
        organizations_pb2.UpdateOrganization(), external_id="acme-2", paths=["metadata"]
    )
    assert dict(masked.metadata) == {}
    with pytest.raises(EmulatorError, match="display_name cannot be cleared"):
        directory.update_organization(
            organizations_pb2.UpdateOrganization(), org_id=org.id, paths=["display_name"]
        )


# --- users and memberships -----------------------------------------------------------------


def test_first_member_gets_admin_and_later_members_get_member(directory, org):
    first = add_user(directory, org)
    second = add_user(directory, org)
    assert [r.name for r in first.memberships[0].roles] == ["admin"]
    assert [r.name for r in second.memberships[0].roles] == ["member"]
    admin = directory.get_role("admin")
    assert first.memberships[0].roles[0] == commons_pb2.Role(
        id=admin.id, name="admin", display_name="Admin"
    )


def test_invitation_email_only_when_asked(directory, org):
    quiet = add_user(directory, org, invite=False)
    assert quiet.memberships[0].membership_status == commons_pb2.ACTIVE
    assert quiet.user_profile.email_verified is True
    assert directory.invitation_emails == []
    invited = add_user(directory, org, invite=True)
    assert invited.memberships[0].membership_status == commons_pb2.PENDING_INVITE
    assert invited.user_profile.email_verified is False
    assert not invited.memberships[0].HasField("join_time")
    assert [(e["to"], e["user_id"], e["organization_id"]) for e in directory.invitation_emails] == [
        (invited.email, invited.id, org.id)
    ]


def test_users_are_found_by_email_case_insensitively_and_email_is_unique(directory, org):
    user = add_user(directory, org, email="Ada.Lovelace@Example.TEST")
    assert directory.find_user_by_email("ada.lovelace@example.test").id == user.id
    assert user.email == "Ada.Lovelace@Example.TEST"
    with pytest.raises(EmulatorError) as excinfo:
        add_user(directory, org, email="ADA.LOVELACE@example.test")
    assert excinfo.value.message == 'user with email "ADA.LOVELACE@example.test" already exists'
    directory.duplicate_status["user_external_id"] = grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(EmulatorError) as excinfo:
        add_user(directory, org, external_id=user.external_id)
    assert excinfo.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert directory.counts()["users"] == 1


def test_getters_return_copies(directory, org):
    user = add_user(directory, org)
    fetched = directory.get_user(user.id)
    fetched.email = "changed@example.test"
    fetched.memberships[0].roles[0].name = "owner"
    assert directory.get_user(user.id).email == user.email
    assert directory.effective_roles(user.id, org.id) == ["admin"]


def test_unknown_role_names_are_not_found_and_change_nothing(directory, org):
    with pytest.raises(EmulatorError, match='role "admn" not found') as excinfo:
        add_user(directory, org, "member", "admn")
    assert excinfo.value.code == grpc.StatusCode.NOT_FOUND
    assert directory.counts()["users"] == 0
    user = add_user(directory, org, "member")
    with pytest.raises(EmulatorError, match='role "auditor" not found'):
        directory.update_membership(
            org.id,
            users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="auditor")]),
            user_id=user.id,
        )
    assert directory.effective_roles(user.id, org.id) == ["member"]
    other = directory.create_organization(CreateOrganizationFactory())
    with pytest.raises(EmulatorError, match='role "auditor" not found'):
        directory.create_membership(other.id, membership("auditor"), user_id=user.id)
    assert len(directory.get_user(user.id).memberships) == 1
    directory.create_role(CreateRoleFactory(name="auditor"))
    assert directory.effective_roles(add_user(directory, org, "auditor").id, org.id) == ["auditor"]
    assert directory.effective_roles(user.id, "org_000000000000000000") == []


def test_permissions_for_roles_include_what_extended_roles_grant(directory):
    for name in ("docs:read", "docs:write", "billing:read"):
        directory.create_permission(CreatePermissionFactory(name=name))
    directory.create_role(CreateRoleFactory(name="reader", permissions=["docs:read"]))
    directory.create_role(
        CreateRoleFactory(name="editor", extends="reader", permissions=["docs:write"])
    )
    directory.create_role(CreateRoleFactory(name="finance", permissions=["billing:read"]))
    assert directory.permissions_for_roles(["editor"]) == ["docs:write", "docs:read"]
    assert directory.permissions_for_roles(["finance", "editor", "ghost"]) == [
        "billing:read",
        "docs:write",
        "docs:read",
    ]
    with pytest.raises(EmulatorError, match='"editor" already extends "reader"'):
        directory.update_role("reader", roles_pb2.UpdateRole(extends="editor"))


def test_record_login(directory, org):
    user = add_user(directory, org)
    assert not user.HasField("last_login_time")
    directory.record_login(user.id)
    assert directory.get_user(user.id).last_login_time.seconds > 0
    with pytest.raises(LookupError, match='user "usr_x" not found'):
        directory.record_login("usr_x")


def test_membership_lifecycle_and_cascade(directory, org):
    other = directory.create_organization(CreateOrganizationFactory())
    user = add_user(directory, org)
    both = directory.create_membership(
        other.id, membership("member"), user_id=user.id, send_invitation_email=False
    )
    assert {m.organization_id for m in both.memberships} == {org.id, other.id}
    with pytest.raises(
        EmulatorError, match="membership of user .* in organization .* already exists"
    ):
        directory.create_membership(other.id, membership(), external_id=user.external_id)
    updated = directory.update_membership(
        other.id,
        users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="admin")]),
        user_id=user.id,
    )
    assert [r.name for r in updated.memberships[1].roles] == ["admin"]
    directory.delete_membership(org.id, user_id=user.id)
    assert [m.organization_id for m in directory.get_user(user.id).memberships] == [other.id]
    directory.delete_membership(other.id, external_id=user.external_id)
    assert directory.get_user(user.id) is None
    assert directory.find_user_by_email(user.email) is None
    assert directory.counts() | {"roles": 0} == {
        "organizations": 2,
        "users": 0,
        "memberships": 0,
        "roles": 0,
        "permissions": 0,
        "invitation_emails": 0,
    }


def test_deleting_an_organization_removes_its_memberships_but_keeps_users(directory, org):
    user = add_user(directory, org)
    directory.delete_organization(org.id)
    assert directory.get_user(user.id).memberships == []
    assert directory.role_users_count("admin") == 0
    assert directory.get_organization_by_external_id("acme") is None


# --- roles ----------------------------------------------------------------------------------


def test_a_role_in_use_is_deleted_only_with_a_reassignment(directory, org):
    directory.create_role(CreateRoleFactory(name="auditor"))
    user = add_user(directory, org, "auditor", "member")
    assert directory.role_users_count("auditor") == 1
    with pytest.raises(EmulatorError) as excinfo:
        directory.delete_role("auditor")
    assert excinfo.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert excinfo.value.message == ROLE_STILL_ASSIGNED
    directory.delete_role("auditor", reassign_to="member")
    assert [r.name for r in directory.get_user(user.id).memberships[0].roles] == ["member"]
    with pytest.raises(EmulatorError, match='role "auditor" not found'):
        directory.get_role("auditor")
    with pytest.raises(EmulatorError, match="is a default role"):
        directory.delete_role("member")


def test_duplicate_role_and_permission_names(directory):
    directory.create_permission(CreatePermissionFactory(name="docs:read"))
    with pytest.raises(EmulatorError, match="duplicate key not allowed") as excinfo:
        directory.create_permission(CreatePermissionFactory(name="docs:read"))
    assert excinfo.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(EmulatorError, match="duplicate key not allowed"):
        directory.create_role(CreateRoleFactory(name="admin"))
    with pytest.raises(EmulatorError, match='permission\\(s\\) not found: "ghost:read"'):
        directory.create_role(CreateRoleFactory(permissions=["docs:read", "ghost:read"]))


# --- events ---------------------------------------------------------------------------------


def test_events_are_protojson_and_delivered_outside_the_lock(directory):
    seen: list[Event] = []

    blocked: list[bool] = []

    def reentrant(event: Event) -> None:
        # Another thread reading the directory would block if listeners ran under its lock.
        reader = threading.Thread(target=directory.counts, daemon=True)
        reader.start()
        reader.join(timeout=5)
        blocked.append(reader.is_alive())
        seen.append(event)

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    directory.subscribe(broken)
    directory.subscribe(reentrant)
    org = directory.create_organization(CreateOrganizationFactory(display_name="Acme"))
    user = add_user(directory, org, invite=True)
    directory.create_permission(CreatePermissionFactory(name="docs:read"))
    directory.create_role(CreateRoleFactory(name="reader", permissions=["docs:read"]))
    assert blocked == [False] * 5
    assert [(e.type, e.object_type) for e in seen] == [
        ("organization.created", "Organization"),
        ("user.organization_membership_created", "OrgMembershipEvent"),
        ("user.organization_invitation", "OrgMembershipEvent"),
        ("permission.created", "Permission"),
        ("role.created", "Role"),
    ]
    assert seen[0].data["display_name"] == "Acme" and seen[0].organization_id == org.id
    assert seen[1].data["organization"]["id"] == org.id
    assert seen[1].data["user"]["email"] == user.email
    assert seen[1].data["user"]["membership"] == seen[1].data["user"]["memberships"][0]
    assert seen[1].data["user"]["membership"]["membership_status"] == "PENDING_INVITE"
    assert seen[4].data["permissions"][0]["name"] == "docs:read"


# --- pagination -----------------------------------------------------------------------------


def test_keyset_pagination_survives_deletes_between_pages(directory):
    created = [directory.create_organization(CreateOrganizationFactory()).id for _ in range(25)]
    first = directory.list_organizations(page_size=10)
    assert [o.id for o in first.items] == created[:10]
    assert first.total_size == 25 and first.prev_page_token == ""
    directory.delete_organization(created[10])
    second = directory.list_organizations(10, first.next_page_token)
    assert [o.id for o in second.items] == created[11:21]
    third = directory.list_organizations(10, second.next_page_token)
    assert [o.id for o in third.items] == created[21:]
    assert third.next_page_token == ""
    back = directory.list_organizations(10, third.prev_page_token)
    assert [o.id for o in back.items] == created[11:21]
    assert directory.list_organizations().items == first.items  # default page size 10
    assert len(directory.list_organizations(page_size=1000).items) == 24  # capped at 100


def test_page_tokens_are_checked(directory, org):
    add_user(directory, org)
    add_user(directory, org)
    users_token = directory.list_users(page_size=1).next_page_token
    assert users_token
    for token in (users_token, "garbage!", "bm9wZQ"):
        with pytest.raises(EmulatorError) as excinfo:
            directory.list_organizations(1, token)
        assert excinfo.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "is not a token of this list" in excinfo.value.message


# --- state ----------------------------------------------------------------------------------


def test_reset_clears_everything_and_reseeds_default_roles(tmp_path):
    store = SqlitePersistence(tmp_path / "emulator.sqlite3")
    store.save("auth.client", "skc_1", b"kept")
    directory = Directory(store)
    org = directory.create_organization(CreateOrganizationFactory())
    add_user(directory, org, invite=True)
    directory.duplicate_status["user_email"] = grpc.StatusCode.ALREADY_EXISTS
    directory.reset()
    assert directory.counts() == {
        "organizations": 0,
        "users": 0,
        "memberships": 0,
        "roles": 2,
        "permissions": 0,
        "invitation_emails": 0,
    }
    assert [r.name for r in directory.list_roles()] == ["admin", "member"]
    assert directory.duplicate_status["user_email"] == grpc.StatusCode.INVALID_ARGUMENT
    assert [key for key, _ in store.load("directory.role")] == ["admin", "member"]
    assert all(list(store.load(kind)) == [] for kind in DIRECTORY_KINDS[:2])
    assert list(store.load("auth.client")) == [("skc_1", b"kept")]


def test_state_survives_a_restart_with_persistence(tmp_path):
    path = tmp_path / "emulator.sqlite3"
    store = SqlitePersistence(path)
    directory = Directory(store)
    directory.create_permission(CreatePermissionFactory(name="docs:read"))
    directory.create_role(CreateRoleFactory(name="reader", permissions=["docs:read"]))
    org = directory.create_organization(CreateOrganizationFactory(external_id="acme"))
    users = [add_user(directory, org, "reader") for _ in range(3)]
    directory.record_login(users[0].id)
    store.close()

    restarted = Directory(SqlitePersistence(path))
    assert restarted.counts() == directory.counts() | {"invitation_emails": 0}
    assert restarted.get_organization_by_external_id("acme") == org
    assert restarted.find_user_by_email(users[1].email).id == users[1].id
    assert restarted.get_user_by_external_id(users[2].external_id).id == users[2].id
    assert restarted.get_user(users[0].id).last_login_time.seconds > 0
    assert restarted.permissions_for_roles(["reader"]) == ["docs:read"]
    assert restarted.role_users_count("reader") == 3
    page = restarted.list_organization_users(org.id, page_size=2)
    assert [u.id for u in page.items] == [users[0].id, users[1].id] and page.total_size == 3
    # New ids keep increasing after the restart, so creation order stays the list order.
    newer = add_user(restarted, org)
    assert [u.id for u in restarted.list_users(page_size=100).items][-1] == newer.id


def test_concurrent_writers_keep_indexes_consistent(directory):
    orgs = [directory.create_organization(CreateOrganizationFactory()) for _ in range(4)]
    created: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                user = directory.create_user_and_membership(
                    orgs[i % 4].id,
                    users_pb2.CreateUser(email=f"w{n}-{i}@example.test"),
                    send_invitation_email=False,
                )
                created.append(user.id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(created)) == 800 == directory.counts()["users"]
    assert sum(directory.list_organization_users(o.id).total_size for o in orgs) == 800
    assert directory.role_users_count("admin") == 4
