"""MIGRATION['DEFAULT_ROLE']: the role a membership gets when its row names none."""

from __future__ import annotations

import pytest
from django.core import checks as django_checks
from django.test import override_settings

from migration import checks
from migration.models import ImportRecord, ImportRun
from migration.reporting import EXIT_OK, EXIT_PROBLEMS

from .conftest import FAST_MIGRATION
from .test_import import all_users, import_files, memberships, organizations_by_external_id

Status = ImportRecord.Status


def migration_checks() -> list[django_checks.CheckMessage]:
    return [m for m in django_checks.run_checks(tags=["migration"]) if m.id == "migration.E013"]


@pytest.mark.parametrize("value", ["", "sales-eu", "Équipe", None, 3, "x" * 65])
def test_default_role_must_be_a_role_name(value):
    with override_settings(MIGRATION={"DEFAULT_ROLE": value}):
        assert migration_checks() == [
            django_checks.Error(
                checks.E013.format(value=value), hint=checks.E013_HINT, id="migration.E013"
            )
        ]


def test_default_role_check_passes_for_a_role_name():
    with override_settings(MIGRATION={"DEFAULT_ROLE": "viewer"}):
        assert migration_checks() == []
    with override_settings(MIGRATION={}):
        assert migration_checks() == []


@pytest.mark.django_db(transaction=True)
def test_no_user_naming_no_role_becomes_admin_whichever_comes_first(
    scalekit, sdk, command, write, organizations_csv
):
    """Scalekit makes an organization's first member admin when no role is sent; with four
    workers which user is first is chance, so the default role is always sent."""
    users = write(
        "users.csv",
        "email,external_id,memberships\n"
        + "".join(f"u{i}@example.com,u{i},acme;globex:admin\n" for i in range(8)),
    )
    result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_OK, result
    orgs = organizations_by_external_id(sdk)
    assert {email: memberships(user) for email, user in all_users(sdk).items()} == {
        f"u{i}@example.com": {orgs["acme"]: {"member"}, orgs["globex"]: {"admin"}} for i in range(8)
    }
    verified = command("migration_verify", ImportRun.objects.get().pk)
    assert verified.code == EXIT_OK, verified


@pytest.mark.django_db(transaction=True)
def test_default_role_may_be_a_role_of_the_roles_source(
    scalekit, sdk, command, write, organizations_csv
):
    roles = write("roles.csv", "name,display_name\nviewer,Viewer\n")
    users = write("users.csv", "email,org_external_id\na@example.com,acme\nb@example.com,acme\n")
    with override_settings(MIGRATION={**FAST_MIGRATION, "DEFAULT_ROLE": "viewer"}):
        result = import_files(command, users=users, organizations=organizations_csv, roles=roles)
        assert result.code == EXIT_OK, result
        verified = command("migration_verify", ImportRun.objects.get().pk)
    assert verified.code == EXIT_OK, verified
    acme = organizations_by_external_id(sdk)["acme"]
    assert [memberships(u) for u in all_users(sdk).values()] == [{acme: {"viewer"}}] * 2


@pytest.mark.django_db(transaction=True)
def test_a_default_role_scalekit_does_not_have_fails_the_users_that_need_it(
    scalekit, sdk, command, write, organizations_csv
):
    users = write(
        "users.csv",
        "email,memberships\nnamed@example.com,acme:admin\nunnamed@example.com,acme\n",
    )
    with override_settings(MIGRATION={**FAST_MIGRATION, "DEFAULT_ROLE": "viewer"}):
        result = import_files(command, users=users, organizations=organizations_csv)
    assert result.code == EXIT_PROBLEMS, result
    assert set(all_users(sdk)) == {"named@example.com"}
    failed = ImportRecord.objects.get(kind="user", email="unnamed@example.com")
    assert (failed.status, failed.error_code, failed.retryable) == (
        Status.FAILED,
        "unknown_role",
        False,
    )
    assert failed.last_error == (
        "the row names no role and MIGRATION['DEFAULT_ROLE'] = 'viewer' is not a role of "
        "Scalekit (create it, define it in the roles source, or set DEFAULT_ROLE to an "
        "existing role)"
    )
