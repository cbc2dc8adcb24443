"""migration_rollback through the real SDK against the emulator: only what the run created."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.utils import timezone
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from migration.ingest import create_run
from migration.models import ImportRecord, ImportRun
from migration.reporting import EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from migration.sources import open_file_source

from .conftest import FAST_MIGRATION
from .test_import import all_users, import_files, memberships, organizations_by_external_id

pytestmark = pytest.mark.django_db(transaction=True)
Status = ImportRecord.Status

THREE_ORGANIZATIONS = "external_id,display_name\nacme,Acme\nglobex,Globex\ninitech,Initech\n"


def test_rollback_undoes_what_failed_records_created_before_their_error(
    scalekit, sdk, command, write, monkeypatch
):
    """A user created before a later membership failed, and a membership added to an existing
    user before the next one failed, are both undone (their records are ``failed``)."""
    from migration.runner import execute, plan_roles, run_phase_inprocess

    monkeypatch.setattr("migration.rollback.CHUNK", 1)  # every record its own chunk
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    alice = sdk.users.create_user_and_membership(
        acme.id,
        users_pb2.CreateUser(
            email="alice@example.com",
            external_id="u1",
            membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="member")]),
        ),
        send_invitation_email=False,
    )[0].user
    users = write(
        "users.csv",
        "email,external_id,memberships\n"
        "alice@example.com,u1,acme;globex;initech\n"
        "bob@example.com,u2,acme;initech\n",
    )
    organizations = write("orgs.csv", THREE_ORGANIZATIONS)
    with override_settings(MIGRATION=FAST_MIGRATION):
        run = create_run(
            [open_file_source("organization", organizations), open_file_source("user", users)]
        )
        run.status = ImportRun.Status.RUNNING
        run.save()
        plan_roles(run)
        run_phase_inprocess(run, "organization", None)
        # initech disappears between the organizations and the users: its memberships fail.
        sdk.organization.delete_organization(organizations_by_external_id(sdk)["initech"])
        execute(run)

    alice_record = run.records.get(kind="user", key="u1")
    bob_record = run.records.get(kind="user", key="u2")
    globex = organizations_by_external_id(sdk)["globex"]
    assert (alice_record.status, alice_record.error_code) == (Status.FAILED, "not_found")
    assert alice_record.result == {"created_memberships": [globex]}
    assert (bob_record.status, bob_record.outcome) == (Status.FAILED, "created")
    assert bob_record.scalekit_id in {u.id for u in all_users(sdk).values()}

    rolled = command("migration_rollback", run.pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    report = json.loads(rolled.out)
    assert report["deleted"] == {"user": 1, "organization": 2}
    assert report["memberships_removed"] == 1
    left = all_users(sdk)
    assert set(left) == {"alice@example.com"}
    assert left["alice@example.com"].id == alice.id
    assert memberships(left["alice@example.com"]) == {acme.id: {"member"}}
    assert set(organizations_by_external_id(sdk)) == {"acme"}
    assert set(run.records.filter(kind="user").values_list("status", flat=True)) == {
        Status.ROLLED_BACK
    }


def test_rollback_refuses_while_records_are_in_flight(
    scalekit, sdk, command, write, organizations_csv
):
    users = write("users.csv", "email,org_external_id\na@example.com,acme\nb@example.com,acme\n")
    assert import_files(command, users=users, organizations=organizations_csv).code == EXIT_OK
    run = ImportRun.objects.get()
    # A worker holds b (a redelivered batch, say) although the run is no longer running.
    run.records.filter(kind="user", email="b@example.com").update(
        status=Status.IN_FLIGHT, claimed_by="worker-1", claimed_at=timezone.now()
    )

    refused = command("migration_rollback", run.pk, "--yes")
    assert refused.code == EXIT_USAGE
    assert f"Run {run.pk} has 1 record(s) in flight" in refused.err
    assert f"migration_resume {run.pk} --takeover" in refused.err
    assert set(all_users(sdk)) == {"a@example.com", "b@example.com"}  # nothing deleted
    run.refresh_from_db()
    assert run.status == ImportRun.Status.COMPLETED


@pytest.mark.parametrize("command_name", ["migration_rollback", "migration_verify"])
def test_rollback_and_verify_without_a_client_exit_cleanly(
    migration_settings, run_factory, record_factory, command, command_name
):
    run = run_factory(status=ImportRun.Status.COMPLETED)
    record_factory(run=run, status=Status.SUCCEEDED, outcome="created", scalekit_id="usr_1")
    extra = ["--yes"] if command_name == "migration_rollback" else []
    unconfigured = {"ENVIRONMENT_URL": "", "CLIENT_ID": "", "CLIENT_SECRET": ""}
    with override_settings(SCALEKIT_AUTH=unconfigured):
        result = command(command_name, run.pk, *extra)
    assert result.code == EXIT_STOPPED, result
    assert "Scalekit is not configured: set" in result.err
    assert run.records.get().status == Status.SUCCEEDED


def test_membership_added_by_a_crashed_attempt_is_found_on_recheck_and_rolled_back(
    scalekit, sdk, command, write
):
    from migration.batches import claim

    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    globex = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Globex", external_id="globex")
    )[0].organization
    alice = sdk.users.create_user_and_membership(
        acme.id,
        users_pb2.CreateUser(email="alice@example.com", external_id="u1"),
        send_invitation_email=False,
    )[0].user
    users = write("users.csv", "email,external_id,memberships\nalice@example.com,u1,acme;globex\n")
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\nglobex,Globex\n")
    with override_settings(MIGRATION=FAST_MIGRATION):
        run = create_run(
            [open_file_source("organization", organizations), open_file_source("user", users)]
        )
    record = run.records.get(kind="user")
    claim(run, "user", record.pk, record.pk, "dead-worker")
    # The dead worker had added alice to globex; its answer, and the ledger write, were lost.
    sdk.users.create_membership(globex.id, alice.id, users_pb2.CreateMembership())

    resumed = command("migration_resume", run.pk, "--takeover", "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    record.refresh_from_db()
    assert record.result == {"created_memberships": [globex.id]}

    rolled = command("migration_rollback", run.pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    assert json.loads(rolled.out)["memberships_removed"] == 1
    assert set(memberships(all_users(sdk)["alice@example.com"])) == {acme.id}


def permission_names(sdk) -> set[str]:
    response = sdk.permissions.list_permissions(page_size=100)[0]
    return {p.name for p in response.permissions}


def test_rollback_deletes_the_permissions_the_run_created_unless_a_role_that_stays_holds_one(
    scalekit, sdk, command, write
):
    sdk.permissions.create_permission(
        roles_pb2.CreatePermission(name="content:read", description="already there")
    )
    sdk.roles.create_role(roles_pb2.CreateRole(name="support", display_name="Support"))
    roles = write(
        "roles.csv",
        "name,display_name,permissions\n"
        "editor,Editor,content:edit|content:read\n"
        "reviewer,Reviewer,content:edit|content:review\n",
    )
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\n")
    users = write("users.csv", "email,external_id,memberships\nalice@example.com,u1,acme:editor\n")
    imported = import_files(command, users=users, organizations=organizations, roles=roles)
    assert imported.code == EXIT_OK, imported

    run = ImportRun.objects.get()
    listed = [
        name
        for result in run.records.filter(kind="role").values_list("result", flat=True)
        for name in result.get("created_permissions", [])
    ]
    # Each new permission is listed once, by the role whose create made it; content:read is not.
    assert sorted(listed) == ["content:edit", "content:review"]
    # Someone gives a role that was already there one of the run's new permissions.
    sdk.permissions.add_permissions_to_role("support", ["content:review"])

    rolled = command("migration_rollback", run.pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    report = json.loads(rolled.out)
    assert report["deleted"] == {"user": 1, "organization": 1, "role": 2, "permission": 1}
    assert report["kept_permissions"] == {"content:review": "support"}
    assert permission_names(sdk) >= {"content:read", "content:review"}
    assert "content:edit" not in permission_names(sdk)
    assert {p.name for p in sdk.permissions.list_role_permissions("support")[0].permissions} == {
        "content:review"
    }

    text = command("migration_rollback", run.pk, "--yes")
    assert text.code == EXIT_OK, text
    assert "kept permission content:review: role support holds it" in text.out


def test_permissions_of_a_role_that_failed_after_creating_them_are_rolled_back(
    scalekit, sdk, command, write
):
    scalekit.control.set_faults(unavailable_ratio=1.0, methods=["CreateRole"])
    roles = write("roles.csv", "name,permissions\nauditor,audit:read|audit:export\n")
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\n")
    with override_settings(MIGRATION=FAST_MIGRATION):
        imported = import_files(command, organizations=organizations, roles=roles)
    assert imported.code != EXIT_OK
    record = ImportRecord.objects.get(kind="role")
    assert (record.status, record.scalekit_id) == (Status.FAILED, "")
    assert sorted(record.result["created_permissions"]) == ["audit:export", "audit:read"]
    scalekit.control.clear_faults()

    rolled = command("migration_rollback", record.run_id, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    assert json.loads(rolled.out)["deleted"] == {"organization": 1, "permission": 2}
    assert not permission_names(sdk) & {"audit:read", "audit:export"}


def test_a_permission_created_by_an_attempt_whose_answer_was_lost_is_claimed_on_recheck(
    scalekit, sdk, command, write
):
    from migration.batches import claim

    roles = write("roles.csv", "name,permissions\nauditor,audit:read\n")
    with override_settings(MIGRATION=FAST_MIGRATION):
        run = create_run([open_file_source("role", roles)])
    record = run.records.get(kind="role")
    claim(run, "role", record.pk, record.pk, "dead-worker")
    # The dead worker had created the permission; its answer, and the ledger write, were lost.
    sdk.permissions.create_permission(roles_pb2.CreatePermission(name="audit:read"))

    resumed = command("migration_resume", run.pk, "--takeover", "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    record.refresh_from_db()
    assert record.result == {"created_permissions": ["audit:read"]}
    assert (record.status, record.outcome) == (Status.SUCCEEDED, "created")


def test_a_permission_whose_create_answer_was_lost_is_claimed_by_the_retry(
    scalekit, sdk, command, write, monkeypatch
):
    """The create went through but its answer was lost; the retry's ALREADY_EXISTS is ours."""
    from migration.gateway import Gateway, Transient

    create_permission = Gateway.create_permission
    lost: list[str] = []

    def answer_lost_once(self, name, description=""):
        create_permission(self, name, description)
        if not lost:
            lost.append(name)
            raise Transient("deadline exceeded", "timeout")

    monkeypatch.setattr(Gateway, "create_permission", answer_lost_once)
    roles = write("roles.csv", "name,permissions\nauditor,audit:read\n")
    with override_settings(MIGRATION=FAST_MIGRATION):
        imported = import_files(command, roles=roles)
    assert imported.code == EXIT_OK, imported
    assert lost == ["audit:read"]
    record = ImportRecord.objects.get(kind="role")
    assert (record.status, record.attempts) == (Status.SUCCEEDED, 2)
    assert record.result == {"created_permissions": ["audit:read"]}


def role_names(sdk) -> set[str]:
    return {role.name for role in sdk.roles.list_roles()[0].roles}


def existing_alice(sdk, *, external_id: str | None = "u1"):
    """Acme, and alice in it as a member, before any run."""
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    user = users_pb2.CreateUser(
        email="alice@example.com",
        membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="member")]),
    )
    if external_id:
        user.external_id = external_id
    alice = sdk.users.create_user_and_membership(acme.id, user, send_invitation_email=False)[0]
    return acme, alice.user


def test_rollback_takes_off_the_roles_and_external_id_the_run_gave_an_existing_user(
    scalekit, sdk, command, write
):
    """Found by email, alice gets the external id and two roles in her existing membership
    (one a role the run creates). The rollback restores her and can then delete that role; a
    role someone gave her since stays."""
    acme, alice = existing_alice(sdk, external_id=None)
    roles = write("roles.csv", "name,display_name\neditor,Editor\n")
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\n")
    users = write(
        "users.csv", "email,external_id,memberships\nalice@example.com,u1,acme:admin|editor\n"
    )
    imported = import_files(command, users=users, organizations=organizations, roles=roles)
    assert imported.code == EXIT_OK, imported
    run = ImportRun.objects.get()
    record = run.records.get(kind="user")
    assert record.outcome == "updated"
    assert record.result == {
        "previous_external_id": "",
        "added_roles": {acme.id: ["admin", "editor"]},
    }
    now = sdk.users.get_user(alice.id)[0].user
    assert now.external_id == "u1"
    assert memberships(now) == {acme.id: {"member", "admin", "editor"}}
    sdk.roles.create_role(roles_pb2.CreateRole(name="auditor", display_name="Auditor"))
    sdk.users.update_membership(
        acme.id,
        alice.id,
        users_pb2.UpdateMembership(
            roles=[commons_pb2.Role(name=n) for n in ("member", "admin", "editor", "auditor")]
        ),
    )

    rolled = command("migration_rollback", run.pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    report = json.loads(rolled.out)
    assert report["deleted"] == {"role": 1}
    assert (report["roles_removed"], report["external_ids_cleared"]) == (2, 1)
    assert report["errors"] == []
    after = sdk.users.get_user(alice.id)[0].user
    assert memberships(after) == {acme.id: {"member", "auditor"}}
    assert not after.HasField("external_id")
    assert "editor" not in role_names(sdk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.ROLLED_BACK

    again = command("migration_rollback", run.pk, "--yes", "--json")
    assert again.code == EXIT_OK, again
    assert json.loads(again.out)["roles_removed"] == 0


def test_an_external_id_changed_since_the_import_is_not_cleared(scalekit, sdk, command, write):
    _acme, alice = existing_alice(sdk, external_id=None)
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\n")
    users = write("users.csv", "email,external_id,memberships\nalice@example.com,u1,acme\n")
    assert import_files(command, users=users, organizations=organizations).code == EXIT_OK
    sdk.users.update_user(alice.id, users_pb2.UpdateUser(external_id="crm-9"))

    rolled = command("migration_rollback", ImportRun.objects.get().pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    assert json.loads(rolled.out)["external_ids_cleared"] == 0
    assert sdk.users.get_user(alice.id)[0].user.external_id == "crm-9"


def test_a_role_added_by_a_call_whose_answer_was_lost_is_rolled_back(
    scalekit, sdk, command, write, monkeypatch
):
    from migration.gateway import Gateway, Transient

    update = Gateway.update_membership_roles
    lost: list[list[str]] = []

    def answer_lost_once(self, organization_id, user_id, roles):
        update(self, organization_id, user_id, roles)
        if not lost:
            lost.append(roles)
            raise Transient("deadline exceeded", "timeout")
        return self.get_user(user_id)

    monkeypatch.setattr(Gateway, "update_membership_roles", answer_lost_once)
    acme, alice = existing_alice(sdk)
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\n")
    users = write("users.csv", "email,external_id,memberships\nalice@example.com,u1,acme:admin\n")
    imported = import_files(command, users=users, organizations=organizations)
    assert imported.code == EXIT_OK, imported
    assert lost == [["member", "admin"]]
    record = ImportRecord.objects.get(kind="user")
    assert (record.attempts, record.result) == (2, {"added_roles": {acme.id: ["admin"]}})

    rolled = command("migration_rollback", record.run_id, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    assert memberships(sdk.users.get_user(alice.id)[0].user) == {acme.id: {"member"}}


def test_a_run_role_added_by_a_crashed_attempt_is_claimed_on_recheck_so_the_role_can_go(
    scalekit, sdk, command, write
):
    """The dead worker gave alice's existing membership the role the run created, and its
    ledger write was lost. Roles carry no time, but nobody else can have given a role this run
    created: the re-check claims it, the rollback takes it off and deletes the role."""
    from migration.batches import claim
    from migration.runner import plan_roles, run_phase_inprocess

    acme, alice = existing_alice(sdk)
    roles = write("roles.csv", "name,display_name\neditor,Editor\n")
    organizations = write("orgs.csv", "external_id,display_name\nacme,Acme\n")
    users = write(
        "users.csv", "email,external_id,memberships\nalice@example.com,u1,acme:admin|editor\n"
    )
    with override_settings(MIGRATION=FAST_MIGRATION):
        run = create_run(
            [
                open_file_source("role", roles),
                open_file_source("organization", organizations),
                open_file_source("user", users),
            ]
        )
        run.status = ImportRun.Status.RUNNING
        run.save()
        plan_roles(run)
        run_phase_inprocess(run, "role", None)
        run_phase_inprocess(run, "organization", None)
    record = run.records.get(kind="user")
    claim(run, "user", record.pk, record.pk, "dead-worker")
    sdk.users.update_membership(
        acme.id,
        alice.id,
        users_pb2.UpdateMembership(roles=[commons_pb2.Role(name=n) for n in ("member", "editor")]),
    )

    resumed = command("migration_resume", run.pk, "--takeover", "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    record.refresh_from_db()
    # editor is claimed (the run created it); admin, added by this attempt, is recorded too.
    assert record.result == {"added_roles": {acme.id: ["editor", "admin"]}}

    rolled = command("migration_rollback", run.pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    assert json.loads(rolled.out)["deleted"] == {"role": 1}
    assert memberships(sdk.users.get_user(alice.id)[0].user) == {acme.id: {"member"}}
    assert "editor" not in role_names(sdk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.ROLLED_BACK
