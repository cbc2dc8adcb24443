from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission, User


@pytest.fixture
def legacy_users(db):
    staff = Group.objects.create(name="Staff")
    staff.permissions.add(Permission.objects.get(codename="view_user"))
    alice = User.objects.create_user("alice", "alice@example.com", password="pw")
    alice.groups.add(staff)
    alice.user_permissions.add(Permission.objects.get(codename="add_user"))
    User.objects.create_user("bob", "BOB@example.com")  # unusable password
    User.objects.create_user("bob2", "bob@example.com")
    User.objects.create_user("ghost", "")
    return staff


def test_audit_reports_the_current_setup(legacy_users, command, settings):
    settings.AUTHENTICATION_BACKENDS = [
        "legacy.backends.LdapBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    result = command("migration_audit", "--json")
    report = json.loads(result.out)
    users = report["sections"]["user model"]
    assert users["AUTH_USER_MODEL"] == "auth.User" and users["custom"] is False
    assert users["users"] == 4 and users["without email"] == 1
    assert users["emails shared by several users (case-insensitive)"] == 1
    assert report["sections"]["authentication backends"] == {
        "1": "legacy.backends.LdapBackend",
        "2": "django.contrib.auth.backends.ModelBackend",
    }
    assert (
        "django.contrib.sessions.middleware.SessionMiddleware"
        in report["sections"]["auth middleware"].values()
    )
    assert report["sections"]["sessions"]["SESSION_ENGINE"] == settings.SESSION_ENGINE
    hashers = report["sections"]["password hashers"]
    assert hashers["hashes: md5"] == 1 and hashers["hashes: (unusable)"] == 3
    groups = report["sections"]["groups and permissions"]
    assert groups["group 'Staff'"] == "1 member(s), 1 permission(s)"
    assert groups["permissions in use (via groups or users)"] == 2
    assert groups["permissions granted to users directly"] == 1
    assert (
        report["sections"]["auth and SSO apps"]["scalekit_auth"]
        == "this project's Scalekit integration"
    )
    levels = [f["level"] for f in report["findings"]]
    assert levels.count("error") == 2  # no email; shared email
    assert any("imports no password hashes" in f["message"] for f in report["findings"])
    assert result.code == 1  # users without email block the import


def test_audit_table_and_clean_exit(db, command):
    User.objects.create_user("carol", "carol@example.com")
    result = command("migration_audit")
    assert result.code == 0
    assert "user model" in result.out and "AUTH_USER_MODEL" in result.out
    assert "findings" in result.out
