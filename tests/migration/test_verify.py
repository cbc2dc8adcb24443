"""migration_verify through the real SDK against the emulator."""

from __future__ import annotations

import json

import pytest
from scalekit.v1.roles import roles_pb2

from migration.models import ImportRun
from migration.reporting import EXIT_PROBLEMS

from .test_import import all_users, import_files

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
