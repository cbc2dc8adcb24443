"""migration_verify through the real SDK against the emulator."""

from __future__ import annotations

import json

import pytest
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from migration.models import ImportRun
from migration.reporting import EXIT_OK, EXIT_PROBLEMS

from .test_import import all_users, import_files, organizations_by_external_id

pytestmark = pytest.mark.django_db(transaction=True)


def test_verify_reports_roles_missing_in_scalekit_listing_them_once(
    scalekit, sdk, command, write, organizations_csv
):
    sdk.roles.create_role(roles_pb2.CreateRole(name="auditor", display_name="Auditor"))
    users = write(
        "users.csv",
        "email,external_id,memberships\n"
        + "".join(f"u{i}@example.com,u{i},acme:auditor\n" for i in range(3)),
    )
    assert import_files(command, users=users, organizations=organizations_csv).code == 0
    assert len(all_users(sdk)) == 3
    # Someone deletes the role afterwards, moving its holders to "member".
    sdk.roles.delete_role("auditor", reassign_role_name="member")
    scalekit.control.reset_counters()

    run = ImportRun.objects.get()
    result = command("migration_verify", run.pk, "--json")
    assert result.code == EXIT_PROBLEMS, result
    found = {(d["key"], d["field"], d["actual"]) for d in json.loads(result.out)["differences"]}
    assert {(f"u{i}", "role[auditor]", "not found in Scalekit") for i in range(3)} <= found
    assert scalekit.control.counters()["calls"]["ListRoles"] == 1


def test_verify_reports_roles_beyond_the_expected_ones_on_memberships_the_run_created(
    scalekit, sdk, command, write
):
    """A membership the run created holds exactly what the source names (or DEFAULT_ROLE):
    an extra admin, as Scalekit gives an organization's first member when no role is sent, is
    a difference. A membership that was already there keeps the roles it had."""
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    sdk.users.create_user_and_membership(
        acme.id,
        users_pb2.CreateUser(
            email="old@example.com",
            external_id="old",
            membership=users_pb2.CreateMembership(
                roles=[commons_pb2.Role(name="admin"), commons_pb2.Role(name="member")]
            ),
        ),
        send_invitation_email=False,
    )
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\nglobex,Globex\n")
    users = write(
        "users.csv",
        "email,external_id,memberships\n"
        "old@example.com,old,acme;globex\n"
        "new@example.com,new,acme;globex:member\n",
    )
    assert import_files(command, users=users, organizations=organizations).code == EXIT_OK
    run = ImportRun.objects.get()
    assert command("migration_verify", run.pk).code == EXIT_OK
    orgs = organizations_by_external_id(sdk)
    people = all_users(sdk)
    for email in ("old@example.com", "new@example.com"):
        sdk.users.update_membership(
            orgs["globex"],
            people[email].id,
            users_pb2.UpdateMembership(
                roles=[commons_pb2.Role(name="member"), commons_pb2.Role(name="admin")]
            ),
        )
    sdk.users.update_membership(
        acme.id,
        people["new@example.com"].id,
        users_pb2.UpdateMembership(
            roles=[commons_pb2.Role(name="member"), commons_pb2.Role(name="admin")]
        ),
    )

    result = command("migration_verify", run.pk, "--json")
    assert result.code == EXIT_PROBLEMS, result
    found = {
        (d["key"], d["field"], d["expected"], d["actual"])
        for d in json.loads(result.out)["differences"]
    }
    # old's acme membership was there before the run: its admin role is not the run's doing.
    assert found == {
        ("old", "roles[globex]", "member", "admin,member"),
        ("new", "roles[acme]", "member", "admin,member"),
        ("new", "roles[globex]", "member", "admin,member"),
    }
