"""`--from-database` and the first login through Scalekit: the role settings the import prints
keep every user's groups and staff/superuser flags; the settings of the README's example (or any
other) are reported with what they would take away."""

from __future__ import annotations

import ast
import json

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import caches
from django.test import Client, override_settings

from migration.sources import DatabaseSource
from migration.sources.database import FLAG_ROLES, role_settings
from scalekit_auth import rollout, tokens
from tests.scalekit_auth.conftest import AFTER_LOGOUT, CALLBACK, login

from .conftest import FAST_MIGRATION

#: The role settings of README.md's scalekit_auth example, which the group names do not match.
README_ROLES = {
    "ROLE_GROUPS": {"admin": ["Administrators"], "member": ["Members"]},
    "STAFF_ROLES": ["admin"],
}
MIGRATION = {**FAST_MIGRATION, "DEFAULT_ORGANIZATION": {"external_id": "default"}}
KEEPING_ROLES = {
    "ROLE_GROUPS": {
        "administrators": ["Administrators"],
        "members": ["Members"],
        "sales_eu": ["Sales EU"],
    },
    "STAFF_ROLES": ["django_staff"],
    "SUPERUSER_ROLES": ["django_superuser"],
}


def legacy_project() -> dict[str, User]:
    """Users as a Django project has them: groups, a superuser, staff without a group."""
    admins, members, sales = (
        Group.objects.create(name=name) for name in ("Administrators", "Members", "Sales EU")
    )
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    root.groups.add(admins)
    alice = User.objects.create_user("alice", "alice@example.com")
    alice.groups.add(members, sales)
    bob = User.objects.create_user("bob", "bob@example.com", is_staff=True)
    carol = User.objects.create_user("carol", "carol@example.com")
    User.objects.create_user("gone", "gone@example.com", is_active=False, is_superuser=True)
    return {"root": root, "alice": alice, "bob": bob, "carol": carol}


def state(user: User) -> tuple[list[str], bool, bool]:
    user.refresh_from_db()
    return sorted(user.groups.values_list("name", flat=True)), user.is_staff, user.is_superuser


def printed_settings(out: str) -> dict:
    """The SCALEKIT_AUTH lines a command printed, read back as the dict they belong in."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('    "ROLE_GROUPS"'))
    end = next(i for i, line in enumerate(lines) if line.startswith('    "SUPERUSER_ROLES"'))
    return ast.literal_eval("{" + "\n".join(lines[start : end + 1]) + "}")


@pytest.fixture
def site(scalekit, settings):
    """The emulator with this test site's URIs registered, and scalekit_auth's caches empty."""
    scalekit.control.register_uris([CALLBACK], [AFTER_LOGOUT], "http://testserver/auth/login/")
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "POST_LOGOUT_REDIRECT_URI": AFTER_LOGOUT}
    for forget in (tokens.keys.clear, tokens.claims_cache.clear, rollout.forget):
        forget()
    caches["default"].clear()
    yield scalekit
    for forget in (tokens.keys.clear, tokens.claims_cache.clear, rollout.forget):
        forget()
    caches["default"].clear()


@pytest.mark.django_db(transaction=True)
def test_the_printed_role_settings_keep_groups_and_flags_at_the_first_login(
    site, command, settings
):
    users = legacy_project()
    before = {name: state(user) for name, user in users.items()}
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **README_ROLES, "SUPERUSER_ROLES": []}
    with override_settings(MIGRATION=MIGRATION):
        result = command("migration_import", "--from-database", "--no-progress")
    assert result.code == 0, result
    assert "Before the cut-over, set these in SCALEKIT_AUTH" in result.out
    assert printed_settings(result.out) == KEEPING_ROLES
    assert (
        "WARNING: SCALEKIT_AUTH's role settings as configured now would change the groups or "
        "flags of 4 imported user(s) at their first login through Scalekit, e.g. root: loses "
        "group 'Administrators', loses is_staff; alice: loses group 'Members'; bob: loses "
        "is_staff; carol: joins group 'Members'."
    ) in result.out

    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **printed_settings(result.out)}
    for name, user in users.items():
        client = Client()
        response = login(client, site, user.email)
        assert response.status_code == 302, response.content
        assert client.session["_auth_user_id"] == str(user.pk)
        assert state(user) == before[name], name

    # What the warning foretold is what the README's settings do at the next login.
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **README_ROLES, "SUPERUSER_ROLES": []}
    assert login(Client(), site, "root@example.com").status_code == 302
    assert state(users["root"]) == ([], False, True)


@pytest.mark.django_db
def test_flags_become_roles_and_no_group_may_take_a_name_the_import_gives_otherwise():
    users = legacy_project()
    staff_group = Group.objects.create(name="Django Staff")
    member_group = Group.objects.create(name="Member")
    users["carol"].groups.add(member_group)
    with override_settings(MIGRATION=MIGRATION):
        roles = {row.location: row for row in DatabaseSource("role").rows()}
        user_rows = {row.location: row for row in DatabaseSource("user").rows()}
        wanted = role_settings()

    assert roles["auth.User.is_staff"].data == {
        "name": "django_staff",
        "display_name": "Django staff (is_staff)",
        "description": "The users who had is_staff in Django; "
        "SCALEKIT_AUTH['STAFF_ROLES'] = ['django_staff'] sets the flag again at login",
    }
    assert roles["auth.User.is_superuser"].data["name"] == FLAG_ROLES["is_superuser"]
    staff_clash = roles[f"auth.Group pk={staff_group.pk}"]
    assert (staff_clash.error_code, staff_clash.error) == (
        "role_name_collision",
        "name: group 'Django Staff' becomes role 'django_staff', the role this import gives "
        "the users who have is_staff: rename the group",
    )
    member_clash = roles[f"auth.Group pk={member_group.pk}"]
    assert (member_clash.error_code, member_clash.error) == (
        "role_name_collision",
        "name: group 'Member' becomes role 'member', which is MIGRATION['DEFAULT_ROLE'], given "
        "to the users in no group: at their login they would join the group too; rename the "
        "group, or set DEFAULT_ROLE to a role no group becomes",
    )

    def row_of(name: str):
        return user_rows[f"auth.User pk={users[name].pk}"]

    assert row_of("root").data["memberships"] == [
        {"organization": "default", "roles": ["administrators", "django_staff", "django_superuser"]}
    ]
    assert row_of("bob").data["memberships"][0]["roles"] == ["django_staff"]
    assert row_of("alice").data["memberships"][0]["roles"] == ["members", "sales_eu"]
    assert row_of("carol").error_code == "role_name_collision"
    assert wanted.as_dict() == KEEPING_ROLES  # the colliding groups are left out


@pytest.mark.django_db
def test_no_flag_role_without_a_user_who_has_the_flag():
    User.objects.create_user("alice", "alice@example.com")
    User.objects.create_user("root", "root@example.com", is_superuser=True, is_active=False)
    with override_settings(MIGRATION=MIGRATION):
        assert list(DatabaseSource("role").rows()) == []
        assert role_settings().as_dict() == {
            "ROLE_GROUPS": {},
            "STAFF_ROLES": [],  # an empty list leaves is_staff as it is at login
            "SUPERUSER_ROLES": [],
        }


@pytest.mark.django_db
def test_without_roles_from_groups_nothing_is_mapped_and_the_default_role_is_checked(
    command, settings
):
    legacy_project()
    settings.SCALEKIT_AUTH = {
        **settings.SCALEKIT_AUTH,
        "ROLE_GROUPS": {"member": ["Scalekit members"]},
        "STAFF_ROLES": [],
        "SUPERUSER_ROLES": [],
    }
    migration = {**MIGRATION, "ROLE_SOURCE": "none"}
    with override_settings(MIGRATION=migration):
        assert role_settings().as_dict() == {
            "ROLE_GROUPS": {},
            "STAFF_ROLES": [],
            "SUPERUSER_ROLES": [],
        }
        roles = [r.data["memberships"][0]["roles"] for r in DatabaseSource("user").rows()]
        assert roles == [[], [], [], []]  # each membership gets DEFAULT_ROLE
        report = json.loads(command("migration_audit", "--json").out)
    assert report["first_login_changes"] == {
        "users": 4,
        "examples": [
            "root: joins group 'Scalekit members'",
            "alice: joins group 'Scalekit members'",
            "bob: joins group 'Scalekit members'",
            "carol: joins group 'Scalekit members'",
        ],
    }


@pytest.mark.django_db
def test_audit_prints_the_role_settings_and_warns_about_the_configured_ones(command, settings):
    legacy_project()
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **README_ROLES}
    with override_settings(MIGRATION=MIGRATION):
        text = command("migration_audit")
        report = json.loads(command("migration_audit", "--json").out)
    assert text.code == 0, text  # a warning: it does not block the import
    assert printed_settings(text.out) == KEEPING_ROLES
    assert report["scalekit_auth_role_settings"] == KEEPING_ROLES
    assert report["first_login_changes"]["users"] == 4
    warning = next(f for f in report["findings"] if "role settings" in f["message"])
    assert warning == {
        "level": "warning",
        "message": "SCALEKIT_AUTH's role settings as configured now would change the groups or "
        "flags of 4 imported user(s) at their first login through Scalekit, e.g. root: loses "
        "group 'Administrators', loses is_staff; alice: loses group 'Members'; bob: loses "
        "is_staff; carol: joins group 'Members'. Set the role settings above.",
    }

    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **KEEPING_ROLES}
    with override_settings(MIGRATION=MIGRATION):
        report = json.loads(command("migration_audit", "--json").out)
    assert report["first_login_changes"] == {"users": 0, "examples": []}
    assert not [f for f in report["findings"] if "role settings" in f["message"]]


@pytest.mark.django_db
def test_role_settings_of_the_wrong_shape_are_named(command, settings):
    legacy_project()
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "STAFF_ROLES": "admin"}
    with override_settings(MIGRATION=MIGRATION):
        report = json.loads(command("migration_audit", "--json").out)
    assert "STAFF_ROLES" in report["first_login_changes"]["error"]
    assert any(
        f["message"].startswith("SCALEKIT_AUTH's role settings cannot be read:")
        for f in report["findings"]
    )
