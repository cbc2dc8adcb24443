"""Imports through the real SDK against the emulator, in-process (threads, SQLite)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
from django.test import override_settings
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.users import users_pb2

from migration.models import ImportRecord, ImportRun
from migration.reporting import EXIT_OK, EXIT_PROBLEMS, EXIT_STOPPED

from .conftest import FAST_MIGRATION

pytestmark = pytest.mark.django_db(transaction=True)
Status = ImportRecord.Status

USERS_CSV = (
    "email,external_id,first_name,last_name,email_verified,memberships,metadata.team\n"
    "alice@example.com,u1,Alice,Liddell,true,acme:admin;globex:editor,red\n"
    "bob@example.com,u2,Bob,Builder,false,acme,\n"
    "carol@example.com,u3,Carol,Danvers,true,globex:member|editor,blue\n"
)


def all_users(sdk) -> dict[str, object]:
    users, token = {}, None
    while True:
        response = sdk.users.list_users(page_size=100, page_token=token)[0]
        for user in response.users:
            assert user.email not in users, f"{user.email} is in Scalekit twice"
            users[user.email] = user
        token = response.next_page_token
        if not token:
            return users


def assert_nothing_duplicated(sdk) -> dict[str, object]:
    """No user twice in Scalekit, no user twice in one organization, and in the ledger (every
    run) no two records on one Scalekit user and no key created twice. Returns the users.

    Scalekit (and the emulator) refuse a second user with the same email or external id, so the
    ledger and membership checks are the ones an import could actually fail."""
    users = all_users(sdk)
    for email, user in users.items():
        organizations = [m.organization_id for m in user.memberships]
        assert len(organizations) == len(set(organizations)), f"{email}: {organizations}"
    succeeded = ImportRecord.objects.filter(kind="user", status=Status.SUCCEEDED)
    per_user = Counter(succeeded.values_list("run_id", "scalekit_id"))
    assert all(n == 1 for n in per_user.values()), per_user.most_common(3)
    created = Counter(
        ImportRecord.objects.filter(kind="user", outcome="created")
        .exclude(status=Status.ROLLED_BACK)
        .values_list("key", flat=True)
    )
    assert all(n == 1 for n in created.values()), created.most_common(3)
    return users


def organizations_by_external_id(sdk) -> dict[str, str]:
    response = sdk.organization.list_organizations(page_size=100)[0]
    return {o.external_id: o.id for o in response.organizations}


def memberships(user) -> dict[str, set[str]]:
    return {m.organization_id: {r.name for r in m.roles} for m in user.memberships}


def import_files(command, *, users=None, organizations=None, roles=None, extra=()):
    args = []
    for flag, path in (("--users", users), ("--organizations", organizations), ("--roles", roles)):
        if path:
            args += [flag, path]
    return command("migration_import", *args, "--no-progress", *extra)


def test_import_creates_roles_organizations_and_users_with_every_membership(
    scalekit, sdk, command, write, organizations_csv, roles_csv
):
    result = import_files(
        command,
        users=write("users.csv", USERS_CSV),
        organizations=organizations_csv,
        roles=roles_csv,
    )
    assert result.code == EXIT_OK, result
    assert "user          3     3" in result.out  # the summary table

    orgs = organizations_by_external_id(sdk)
    users = all_users(sdk)
    assert set(users) == {"alice@example.com", "bob@example.com", "carol@example.com"}
    alice = users["alice@example.com"]
    assert alice.external_id == "u1"
    assert alice.user_profile.given_name == "Alice" and alice.user_profile.family_name == "Liddell"
    assert dict(alice.metadata) == {"team": "red"}
    assert memberships(alice) == {orgs["acme"]: {"admin"}, orgs["globex"]: {"editor"}}
    assert memberships(users["carol@example.com"]) == {orgs["globex"]: {"member", "editor"}}
    editor = sdk.roles.get_role("editor")[0].role
    assert editor.display_name == "Editor"
    permissions = sdk.permissions.list_role_permissions("editor")[0].permissions
    assert {p.name for p in permissions} == {"content:edit", "content:read"}
    assert scalekit.control.emails() == []  # send_invitation_email is off by default

    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.COMPLETED
    assert run.records.filter(outcome="created").count() == 1 + 2 + 3
    assert all(r.scalekit_id for r in run.records.all())

    verified = command("migration_verify", run.pk, "--json")
    assert verified.code == EXIT_OK
    assert json.loads(verified.out) == {"run": run.pk, "checked": 6, "differences": []}


def test_corrupt_file_gives_one_precise_error_per_bad_row_and_imports_the_rest(
    scalekit, sdk, command, write, organizations_csv
):
    users = write(
        "users.csv",
        b"email,external_id,org_external_id,roles,first_name\n"
        b"good1@example.com,g1,acme,,One\n"
        b"broken-email,b1,acme,,Two\n"
        b"good2@example.com,g2,globex,member,Three\n"
        b"latin@example.com,b2,acme,,Ren\xe9\n"
        b"good1@example.com,b3,acme,,Dup\n"
        b"ghost@example.com,b4,nowhere,,Four\n"
        b"role@example.com,b5,acme,no_such_role,Five\n"
        b'quote@example.com,b6,acme,,"Six"x\n'
        b"good3@example.com,g3,acme,admin,Seven\n",
    )
    result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_PROBLEMS, result

    run = ImportRun.objects.get()
    errors = dict(run.records.filter(status=Status.INVALID).values_list("row_number", "last_error"))
    assert errors == {
        3: "email: 'broken-email' is not an email address (no '@')",
        5: "first_name: byte 0xE9 at character 4 is not valid UTF-8 (was the file saved as Latin-1 or Windows-1252? export it as UTF-8)",
        6: f"duplicate email 'good1@example.com': first seen at {users} line 2",
        7: "memberships: unknown organization 'nowhere' (not in the organizations source)",
        8: "memberships: unknown role 'no_such_role' (not in Scalekit and not defined in the roles source)",
        9: "malformed CSV: ',' expected after '\"'",
    }
    assert set(all_users(sdk)) == {"good1@example.com", "good2@example.com", "good3@example.com"}

    exported = command("migration_export_failures", run.pk)
    rows = list(csv.DictReader(io.StringIO(exported.out)))
    assert [(int(r["row_number"]), r["status"]) for r in rows] == [
        (n, "invalid") for n in sorted(errors)
    ]
    assert rows[0]["reason"] == errors[3]


@pytest.mark.parametrize("duplicate_status", ["INVALID_ARGUMENT", "ALREADY_EXISTS"])
def test_second_run_of_the_same_file_creates_nothing_new(
    scalekit, sdk, command, write, organizations_csv, roles_csv, duplicate_status
):
    scalekit.control.set_duplicate_status(
        organization_external_id=duplicate_status,
        user_email=duplicate_status,
        user_external_id=duplicate_status,
    )
    users = write("users.csv", USERS_CSV)
    assert (
        import_files(command, users=users, organizations=organizations_csv, roles=roles_csv).code
        == EXIT_OK
    )
    before = {email: (u.id, memberships(u)) for email, u in all_users(sdk).items()}
    orgs_before = organizations_by_external_id(sdk)

    second = import_files(command, users=users, organizations=organizations_csv, roles=roles_csv)
    assert second.code == EXIT_OK, second
    assert {email: (u.id, memberships(u)) for email, u in all_users(sdk).items()} == before
    assert organizations_by_external_id(sdk) == orgs_before
    run = ImportRun.objects.latest("pk")
    assert Counter(run.records.values_list("outcome", flat=True)) == {"existing": 6}
    assert command("migration_verify", run.pk).code == EXIT_OK
    assert_nothing_duplicated(sdk)


def test_existing_user_gets_every_missing_membership_and_role(
    scalekit, sdk, command, write, organizations_csv, roles_csv
):
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    existing = sdk.users.create_user_and_membership(
        acme.id,
        users_pb2.CreateUser(
            email="alice@example.com",
            external_id="u1",
            membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="member")]),
        ),
        send_invitation_email=False,
    )[0].user

    result = import_files(
        command,
        users=write("users.csv", USERS_CSV),
        organizations=organizations_csv,
        roles=roles_csv,
    )
    assert result.code == EXIT_OK, result
    orgs = organizations_by_external_id(sdk)
    alice = all_users(sdk)["alice@example.com"]
    assert alice.id == existing.id
    # admin added in acme (member kept), and the globex membership created.
    assert memberships(alice) == {orgs["acme"]: {"member", "admin"}, orgs["globex"]: {"editor"}}
    record = ImportRecord.objects.get(kind="user", external_id="u1")
    assert record.outcome == "updated"
    assert record.result == {
        "added_roles": {orgs["acme"]: ["admin"]},
        "created_memberships": [orgs["globex"]],
    }
    assert ImportRecord.objects.get(kind="organization", key="acme").outcome == "existing"

    # Rollback deletes what the run created, the membership and the role it added; alice stays.
    run = ImportRun.objects.get()
    rolled = command("migration_rollback", run.pk, "--yes", "--json")
    assert rolled.code == EXIT_OK, rolled
    assert json.loads(rolled.out)["deleted"] == {
        "user": 2,
        "organization": 1,
        "role": 1,
        "permission": 2,  # content:edit and content:read, created for the editor role
    }
    left = all_users(sdk)
    assert set(left) == {"alice@example.com"}
    assert memberships(left["alice@example.com"]) == {acme.id: {"member"}}
    assert set(organizations_by_external_id(sdk)) == {"acme"}
    run.refresh_from_db()
    assert run.status == ImportRun.Status.ROLLED_BACK


def test_user_without_external_id_is_found_by_email(
    scalekit, sdk, command, write, organizations_csv
):
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    sdk.users.create_user_and_membership(
        acme.id, users_pb2.CreateUser(email="Dana@Example.com"), send_invitation_email=False
    )
    users = write("users.csv", "email,memberships\ndana@example.com,acme;globex\n")
    result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_OK, result
    (dana,) = all_users(sdk).values()
    assert len(dana.memberships) == 2
    assert ImportRecord.objects.get(kind="user").outcome == "updated"


def test_identity_conflict_is_a_permanent_error(scalekit, sdk, command, write, organizations_csv):
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    other = sdk.users.create_user_and_membership(
        acme.id,
        users_pb2.CreateUser(email="erin@example.com", external_id="crm-77"),
        send_invitation_email=False,
    )[0].user
    users = write(
        "users.csv",
        "email,external_id,org_external_id\nerin@example.com,u9,acme\nfred@example.com,u10,acme\n",
    )
    result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_PROBLEMS
    record = ImportRecord.objects.get(kind="user", external_id="u9")
    assert record.status == Status.FAILED and not record.retryable
    assert record.error_code == "identity_conflict"
    assert record.last_error == (
        f"email 'erin@example.com' belongs to Scalekit user {other.id} with external id 'crm-77', not 'u9'"
    )
    assert ImportRecord.objects.get(kind="user", external_id="u10").status == Status.SUCCEEDED


def test_invitation_emails(scalekit, command, write, organizations_csv, roles_csv):
    users = write("users.csv", USERS_CSV)
    with override_settings(MIGRATION={**FAST_MIGRATION, "INVITE_UNVERIFIED_EMAILS": True}):
        assert (
            import_files(
                command, users=users, organizations=organizations_csv, roles=roles_csv
            ).code
            == EXIT_OK
        )
    assert [e["to"] for e in scalekit.control.emails()] == [
        "bob@example.com"
    ]  # email_verified=false only


def test_send_invitation_email_option(scalekit, command, write, organizations_csv):
    users = write("users.csv", "email,org_external_id\na@example.com,acme\nb@example.com,globex\n")
    result = import_files(
        command, users=users, organizations=organizations_csv, extra=["--send-invitation-email"]
    )
    assert result.code == EXIT_OK
    assert sorted(e["to"] for e in scalekit.control.emails()) == ["a@example.com", "b@example.com"]


def test_require_roles_stops_with_the_list_of_missing_roles(
    scalekit, sdk, command, write, organizations_csv, roles_csv
):
    users = write("users.csv", USERS_CSV)
    result = import_files(
        command,
        users=users,
        organizations=organizations_csv,
        roles=roles_csv,
        extra=["--require-roles"],
    )
    assert result.code == EXIT_STOPPED
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED
    assert run.message == "roles missing in Scalekit (--require-roles): editor"
    assert all_users(sdk) == {}
    assert "editor" not in {r.name for r in sdk.roles.list_roles()[0].roles}


def test_dry_run_sends_nothing(scalekit, command, write, organizations_csv, roles_csv):
    scalekit.control.reset_counters()
    result = import_files(
        command,
        users=write("users.csv", USERS_CSV),
        organizations=organizations_csv,
        roles=roles_csv,
        extra=["--dry-run"],
    )
    assert result.code == EXIT_OK, result
    assert "roles to create from the source: editor" in result.out
    calls = scalekit.control.counters()["calls"]
    assert not any(name.startswith(("Create", "Update", "Delete")) for name in calls), calls
    run = ImportRun.objects.get()
    assert run.dry_run and run.records.filter(status=Status.PENDING).count() == 6
    assert command("migration_resume", run.pk).code == 2  # a dry run is not resumable


def test_unavailable_faults_and_rate_limit_bursts_end_with_every_user_once(
    scalekit, sdk, command, write, tmp_path
):
    from migration.testing import write_organizations_csv, write_users_csv

    organizations = write_organizations_csv(tmp_path / "orgs.csv", 4)
    users = write_users_csv(tmp_path / "users.csv", 40, 4)
    # A server that allows 40 req/s (bursts of 4) against a client configured for 100 in bursts
    # of 20: bursts are refused with RESOURCE_EXHAUSTED; and a fifth of calls fail UNAVAILABLE.
    scalekit.control.set_faults(rate_limit_rps=40, rate_limit_burst=4, unavailable_ratio=0.2)
    fast = {
        **FAST_MIGRATION,
        "CONCURRENCY": 8,
        "BATCH_SIZE": 5,
        "RATE_LIMIT": 100,
        "RATE_BURST": 20,
    }
    with override_settings(MIGRATION=fast):
        result = import_files(command, users=users, organizations=organizations)
    assert result.code == EXIT_OK, result
    rejected = scalekit.control.counters()["rejected"]
    assert sum(rejected.values()) > 10, rejected
    scalekit.control.clear_faults()
    assert len(assert_nothing_duplicated(sdk)) == 40
    run = ImportRun.objects.get()
    assert run.records.filter(status=Status.SUCCEEDED).count() == 44
    verified = command("migration_verify", run.pk, "--json")
    assert json.loads(verified.out)["differences"] == [] and verified.code == EXIT_OK


def test_crashed_worker_records_are_rechecked_then_resumed(
    scalekit, sdk, command, write, organizations_csv
):
    from migration.batches import claim
    from migration.ingest import create_run
    from migration.runner import execute
    from migration.sources import open_file_source

    users = write(
        "users.csv",
        "email,external_id,org_external_id\n"
        + "".join(f"u{i}@example.com,x{i},acme\n" for i in range(6)),
    )
    run = create_run(
        [open_file_source("organization", organizations_csv), open_file_source("user", users)]
    )
    # First pass: organizations only (a worker then dies while holding the users).
    run.status = ImportRun.Status.RUNNING
    run.save()
    with override_settings(MIGRATION={**FAST_MIGRATION}):
        from migration.runner import plan_roles, run_phase_inprocess

        plan_roles(run)
        run_phase_inprocess(run, "organization", None)
    ids = list(run.records.filter(kind="user").order_by("id").values_list("id", flat=True))
    held = claim(run, "user", ids[0], ids[-1], "dead-worker")
    assert len(held) == 6
    # The dead worker had sent three of them (with DEFAULT_ROLE, as the flow does) before it died.
    acme = run.records.get(kind="organization", key="acme").scalekit_id
    for record in held[:3]:
        sdk.users.create_user_and_membership(
            acme,
            users_pb2.CreateUser(
                email=record.email,
                external_id=record.external_id,
                membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="member")]),
            ),
            send_invitation_email=False,
        )

    # Without --takeover the live lease is respected: nothing is sent twice.
    with override_settings(MIGRATION={**FAST_MIGRATION, "LEASE_SECONDS": 300}):
        stuck = execute(run)
    assert stuck.status == ImportRun.Status.RUNNING
    assert run.records.filter(status=Status.IN_FLIGHT).count() == 6

    resumed = command("migration_resume", run.pk, "--takeover", "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    assert len(all_users(sdk)) == 6
    outcomes = Counter(run.records.filter(kind="user").values_list("outcome", flat=True))
    assert outcomes == {"created": 6}  # the three found on re-check were created by this run
    assert command("migration_verify", run.pk).code == EXIT_OK
    assert_nothing_duplicated(sdk)


def test_expired_lease_is_taken_over_without_flag(scalekit, sdk, command, write, organizations_csv):
    from migration.batches import claim
    from migration.ingest import create_run
    from migration.sources import open_file_source

    users = write("users.csv", "email,org_external_id\na@example.com,acme\n")
    run = create_run(
        [open_file_source("organization", organizations_csv), open_file_source("user", users)]
    )
    user = run.records.get(kind="user")
    claim(run, "user", user.pk, user.pk, "dead-worker")
    with override_settings(MIGRATION={**FAST_MIGRATION, "LEASE_SECONDS": 0.001}):
        result = command("migration_resume", run.pk, "--no-progress")
    assert result.code == EXIT_OK, result
    assert set(all_users(sdk)) == {"a@example.com"}


def test_status_command(scalekit, command, write, organizations_csv):
    import_files(
        command,
        users=write("u.csv", "email,org_external_id\na@example.com,acme\nbad,acme\n"),
        organizations=organizations_csv,
    )
    run = ImportRun.objects.get()
    status = command("migration_status", run.pk, "--json")
    assert status.code == EXIT_PROBLEMS
    data = json.loads(status.out)
    assert data["status"] == "completed_with_errors"
    assert data["kinds"]["user"] == {
        "rows": 2,
        "succeeded": 1,
        "created": 1,
        "existing": 0,
        "updated": 0,
        "failed": 0,
        "invalid": 1,
        "pending": 0,
        "rolled_back": 0,
    }
    listing = command("migration_status")
    line = next(line for line in listing.out.splitlines() if line.startswith(f"{run.pk} "))
    assert line.split()[1:3] == ["completed_with_errors", "done"]


def test_import_from_this_projects_database(scalekit, sdk, command, django_user_model):
    from django.contrib.auth.models import Group

    acme, globex = Group.objects.create(name="Acme"), Group.objects.create(name="Globex")
    alice = django_user_model.objects.create_user("alice", "alice@example.com", first_name="Alice")
    alice.groups.add(acme, globex)
    bob = django_user_model.objects.create_user("bob", "bob@example.com")
    bob.groups.add(acme)
    settings = {
        **FAST_MIGRATION,
        "ORGANIZATION_MODEL": "auth.Group",
        "ORGANIZATION_MEMBERS_FIELD": "user",
        "ORGANIZATION_EXTERNAL_ID_FIELD": "name",
        "ROLE_SOURCE": "none",
    }
    with override_settings(MIGRATION=settings):
        result = command("migration_import", "--from-database", "--no-progress")
    assert result.code == EXIT_OK, result
    users = all_users(sdk)
    assert users["alice@example.com"].external_id == str(alice.pk)  # the legacy primary key
    assert (
        len(users["alice@example.com"].memberships) == 2
        and len(users["bob@example.com"].memberships) == 1
    )


def test_admin_retry_failed_sends_again_and_logs(
    scalekit, sdk, admin_client, command, write, organizations_csv
):
    import time

    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    from migration.batches import ledger_lock

    users = write("users.csv", "email,org_external_id\na@example.com,acme\nb@example.com,globex\n")
    scalekit.control.set_faults(unavailable_ratio=1.0, methods=["CreateUserAndMembership"])
    with override_settings(MIGRATION={**FAST_MIGRATION, "MAX_ATTEMPTS": 1}):
        assert (
            import_files(command, users=users, organizations=organizations_csv).code
            == EXIT_PROBLEMS
        )
    run = ImportRun.objects.get()
    failed = run.records.get(kind="user", email="a@example.com")
    assert (failed.status, failed.retryable, failed.error_code) == ("failed", True, "unavailable")
    scalekit.control.clear_faults()

    admin_client.post(
        reverse("admin:migration_importrun_changelist"),
        {"action": "retry_failed", "_selected_action": [run.pk]},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ledger_lock():  # the test database is a shared-cache in-memory SQLite
            run.refresh_from_db()
        if run.status != ImportRun.Status.RUNNING:
            break
        time.sleep(0.2)
    with ledger_lock():
        problems = list(
            run.records.exclude(status="succeeded").values_list("kind", "status", "last_error")
        )
    assert run.status == ImportRun.Status.COMPLETED, problems
    assert set(all_users(sdk)) == {"a@example.com", "b@example.com"}
    assert (
        LogEntry.objects.get(object_id=str(run.pk))
        .get_change_message()
        .startswith("Retried 2 failed record(s)")
    )


@pytest.mark.parametrize(
    "auth,message",
    [
        (
            {"ENVIRONMENT_URL": "", "CLIENT_ID": "", "CLIENT_SECRET": ""},
            "Scalekit is not configured: set",
        ),
        (
            {
                "ENVIRONMENT_URL": "https://127.0.0.1:9",
                "CLIENT_ID": "skc_1",
                "CLIENT_SECRET": "s3cr3t-value",
            },
            "the Scalekit client could not be built (ScalekitException)",
        ),
    ],
)
def test_unreachable_or_unconfigured_scalekit_stops_the_run_clearly(
    migration_settings, command, write, organizations_csv, auth, message
):
    users = write("users.csv", "email,org_external_id\na@example.com,acme\n")
    with override_settings(SCALEKIT_AUTH={"CA_BUNDLE": "", **auth}):
        result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_STOPPED
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED and run.message.startswith(message)
    assert "s3cr3t-value" not in run.message + result.out + result.err
    assert not run.records.filter(status=Status.IN_FLIGHT).exists()


def test_json_and_ndjson_sources_end_to_end(scalekit, sdk, command, write):
    organizations = write(
        "orgs.json",
        json.dumps(
            [{"external_id": "acme", "display_name": "Acme", "metadata": {"region": "emea"}}]
        ),
    )
    users = write(
        "users.ndjson",
        '{"email": "a@example.com", "external_id": 1, "memberships": [{"organization": "acme", "roles": ["admin"]}]}\n'
        '{"email": "b@example.com", "external_id": 2, "org_external_id": "acme", "metadata": {"team": "v"}}\n'
        "not json\n",
    )
    result = import_files(command, users=users, organizations=organizations)
    assert result.code == EXIT_PROBLEMS  # the third line
    assert (
        ImportRecord.objects.get(status=Status.INVALID).last_error
        == "invalid JSON: Expecting value at column 1"
    )
    users_now = all_users(sdk)
    assert set(users_now) == {"a@example.com", "b@example.com"}
    acme = organizations_by_external_id(sdk)["acme"]
    assert memberships(users_now["a@example.com"]) == {acme: {"admin"}}
    assert sdk.organization.get_organization(acme)[0].organization.metadata["region"] == "emea"


def test_verify_prints_and_stores_the_differences(
    scalekit, sdk, command, write, organizations_csv, roles_csv, admin_client
):
    from django.urls import reverse

    from migration.batches import ledger_lock
    from migration.models import VerificationDifference

    assert (
        import_files(
            command,
            users=write("users.csv", USERS_CSV),
            organizations=organizations_csv,
            roles=roles_csv,
        ).code
        == EXIT_OK
    )
    run = ImportRun.objects.get()
    users = all_users(sdk)
    orgs = organizations_by_external_id(sdk)
    sdk.users.delete_user(users["bob@example.com"].id)
    sdk.users.update_membership(
        orgs["acme"],
        users["alice@example.com"].id,
        users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="member")]),
    )

    result = command("migration_verify", run.pk)
    assert result.code == EXIT_PROBLEMS
    assert "6 record(s) checked, 2 difference(s)" in result.out
    stored = {
        (d.key, d.field, d.expected, d.actual)
        for d in VerificationDifference.objects.filter(run=run)
    }
    assert stored == {
        ("u2", "exists", f"user {users['bob@example.com'].id}", "not found in Scalekit"),
        ("u1", "roles[acme]", "admin", "member"),
    }
    run.refresh_from_db()
    assert run.differences == 2 and run.verified_at is not None

    # The admin action verifies again (on a thread, without a broker) and logs it.
    sdk.users.update_membership(
        orgs["acme"],
        users["alice@example.com"].id,
        users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="admin")]),
    )
    admin_client.post(
        reverse("admin:migration_importrun_changelist"),
        {"action": "verify_runs", "_selected_action": [run.pk]},
    )
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with ledger_lock():
            run.refresh_from_db()
        if run.differences == 1:
            break
        time.sleep(0.1)
    assert run.differences == 1


def test_cancel_mid_run_then_resume(scalekit, sdk, command, write, organizations_csv):
    import threading
    import time

    from migration.batches import ledger_lock
    from migration.ingest import create_run
    from migration.runner import cancel, execute
    from migration.sources import open_file_source

    scalekit.control.set_faults(latency_ms=30)
    users = write(
        "users.csv",
        "email,org_external_id\n" + "".join(f"c{i}@example.com,acme\n" for i in range(40)),
    )
    with override_settings(MIGRATION={**FAST_MIGRATION, "CONCURRENCY": 2, "BATCH_SIZE": 5}):
        run = create_run(
            [open_file_source("organization", organizations_csv), open_file_source("user", users)]
        )
        worker = threading.Thread(target=execute, args=(run,))
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with ledger_lock():
                if run.records.filter(kind="user", status=Status.SUCCEEDED).exists():
                    break
            time.sleep(0.02)
        with ledger_lock():
            assert cancel(run)
        worker.join(timeout=30)
    with ledger_lock():
        run.refresh_from_db()
        left = run.records.filter(kind="user", status=Status.PENDING).count()
    assert run.status == ImportRun.Status.CANCELLED
    assert 0 < left < 40  # stopped part-way, the rest put back
    assert not run.records.filter(status=Status.IN_FLIGHT).exists()
    assert len(all_users(sdk)) == 40 - left

    resumed = command("migration_resume", run.pk, "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    assert len(assert_nothing_duplicated(sdk)) == 40


def test_users_naming_a_role_that_failed_are_not_sent_then_resume_sends_them(
    scalekit, sdk, command, write, organizations_csv, roles_csv
):
    users = write(
        "users.csv",
        "email,external_id,memberships\n"
        "alice@example.com,u1,acme:editor\n"
        "bob@example.com,u2,acme:member\n",
    )
    scalekit.control.set_faults(unavailable_ratio=1.0, methods=["CreateRole"])
    with override_settings(MIGRATION={**FAST_MIGRATION, "MAX_ATTEMPTS": 1}):
        result = import_files(
            command, users=users, organizations=organizations_csv, roles=roles_csv
        )
    assert result.code == EXIT_PROBLEMS, result
    alice = ImportRecord.objects.get(kind="user", key="u1")
    assert (alice.status, alice.error_code, alice.retryable) == (Status.FAILED, "dependency", True)
    assert alice.last_error.startswith("role 'editor' was not imported (failed: UNAVAILABLE")
    assert set(all_users(sdk)) == {"bob@example.com"}  # alice was not sent without her role

    scalekit.control.clear_faults()
    run = ImportRun.objects.get()
    resumed = command("migration_resume", run.pk, "--no-progress")
    assert resumed.code == EXIT_OK, resumed
    orgs = organizations_by_external_id(sdk)
    assert memberships(all_users(sdk)["alice@example.com"]) == {orgs["acme"]: {"editor"}}
    assert command("migration_verify", run.pk).code == EXIT_OK


def wait_finished(run: ImportRun, timeout: float = 30) -> None:
    import time

    from migration.batches import ledger_lock

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ledger_lock():  # the admin runs the import on a thread of this process
            run.refresh_from_db()
        if run.status != ImportRun.Status.RUNNING:
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run.pk} still running after {timeout}s")


def test_admin_retry_selected_records_sends_only_those(
    scalekit, sdk, admin_client, command, write, organizations_csv
):
    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    users = write("users.csv", "email,org_external_id\na@example.com,acme\nb@example.com,globex\n")
    scalekit.control.set_faults(unavailable_ratio=1.0, methods=["CreateUserAndMembership"])
    with override_settings(MIGRATION={**FAST_MIGRATION, "MAX_ATTEMPTS": 1}):
        assert (
            import_files(command, users=users, organizations=organizations_csv).code
            == EXIT_PROBLEMS
        )
    scalekit.control.clear_faults()
    run = ImportRun.objects.get()
    a, b = run.records.filter(kind="user").order_by("email")
    assert a.status == b.status == Status.FAILED and a.retryable and b.retryable

    admin_client.post(
        reverse("admin:migration_importrecord_changelist"),
        {"action": "retry_records", "_selected_action": [a.pk]},
    )
    wait_finished(run)
    assert set(all_users(sdk)) == {"a@example.com"}  # b was not selected: not sent
    b.refresh_from_db()
    assert b.status == Status.FAILED
    assert run.status == ImportRun.Status.COMPLETED_WITH_ERRORS
    message = LogEntry.objects.get(object_id=str(run.pk)).get_change_message()
    assert message == "Retried 1 selected failed record(s), started in this process."


def test_admin_retry_selected_records_leaves_a_rolled_back_run_alone(
    admin_client, run_factory, record_factory
):
    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    run = run_factory(status=ImportRun.Status.ROLLED_BACK)
    record = record_factory(run=run, status=Status.FAILED, retryable=True)
    response = admin_client.post(
        reverse("admin:migration_importrecord_changelist"),
        {"action": "retry_records", "_selected_action": [record.pk]},
        follow=True,
    )
    assert f"Run {run.pk} was rolled back: import the source again." in (response.content.decode())
    record.refresh_from_db()
    run.refresh_from_db()
    assert record.status == Status.FAILED and run.status == ImportRun.Status.ROLLED_BACK
    assert not LogEntry.objects.exists()


def test_existing_users_without_external_id_cost_one_listing_per_run(
    scalekit, sdk, command, write, organizations_csv
):
    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    emails = [f"legacy{i}@example.com" for i in range(30)]
    for email in emails:
        sdk.users.create_user_and_membership(
            acme.id, users_pb2.CreateUser(email=email), send_invitation_email=False
        )
    users = write("users.csv", "email,org_external_id\n" + "".join(f"{e},acme\n" for e in emails))
    scalekit.control.reset_counters()
    result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_OK, result
    assert Counter(ImportRecord.objects.filter(kind="user").values_list("outcome", flat=True)) == {
        "existing": 30
    }
    calls = scalekit.control.counters()["calls"]
    assert calls.get("ListUsers") == 1 and "ListOrganizationUsers" not in calls, calls
