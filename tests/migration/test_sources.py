from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings

from migration.sources import DatabaseSource, SourceError, jsonfile, open_file_source
from migration.sources.csvfile import parse_memberships
from migration.sources.database import role_name_for_group


def rows(source):
    return list(source.rows())


def test_csv_rows_carry_line_numbers_and_typed_cells(write):
    path = write(
        "users.csv",
        "\ufeffemail,external_id,memberships,metadata.team,metadata.floor\n"
        "a@example.com,1,acme:admin|member;globex,red,\n"
        "\n"
        '"b@example.com",2,"acme",,"3"\n',
    )
    result = rows(open_file_source("user", path))
    assert [(r.number, r.location) for r in result] == [
        (2, f"{path} line 2"),
        (4, f"{path} line 4"),
    ]
    assert result[0].data == {
        "email": "a@example.com",
        "external_id": "1",
        "memberships": [
            {"organization": "acme", "roles": ["admin", "member"]},
            {"organization": "globex", "roles": []},
        ],
        "metadata": {"team": "red"},
    }
    assert result[1].data["metadata"] == {"floor": "3"}


def test_csv_memberships_with_colons_in_organization_ids():
    assert parse_memberships("eu:acme:admin; us:acme:") == [
        {"organization": "eu:acme", "roles": ["admin"]},
        {"organization": "us:acme", "roles": []},
    ]


def test_csv_bad_rows_do_not_stop_the_file(write):
    path = write(
        "users.csv",
        'email,external_id\na@example.com,1\nb@example.com,2,extra\n"c@example.com"x,3\nd@example.com,4\n',
    )
    result = rows(open_file_source("user", path))
    assert [(r.number, r.error) for r in result] == [
        (2, ""),
        (3, "the row has 3 fields but the header has 2"),
        (4, "malformed CSV: ',' expected after '\"'"),
        (5, ""),
    ]


def test_csv_header_errors_stop_before_any_row(write):
    with pytest.raises(SourceError, match=r"unknown column\(s\) 'emial' for user rows"):
        rows(open_file_source("user", write("u.csv", "emial,external_id\nx,1\n")))
    with pytest.raises(SourceError, match=r"required column\(s\) missing: external_id"):
        rows(open_file_source("organization", write("o.csv", "display_name\nAcme\n")))


def test_csv_undecodable_bytes_survive_for_validation(write):
    path = write("users.csv", b"email,first_name\nrene@example.com,Ren\xe9\nok@example.com,Ok\n")
    result = rows(open_file_source("user", path))
    assert result[0].data["first_name"] == "Ren\udce9"
    assert result[1].data["first_name"] == "Ok"


def test_ndjson_isolates_every_line(write):
    path = write(
        "users.ndjson",
        '{"email": "a@example.com"}\n\n{"email": \n[1, 2]\n{"email": "b@example.com"}\n',
    )
    result = rows(open_file_source("user", path))
    assert [(r.number, r.error, r.data) for r in result] == [
        (1, "", {"email": "a@example.com"}),
        (3, "invalid JSON: Expecting value at column 11", None),
        (4, "expected a JSON object, got list", None),
        (5, "", {"email": "b@example.com"}),
    ]


def test_json_array_is_streamed_across_chunk_boundaries(write, monkeypatch):
    monkeypatch.setattr(jsonfile, "CHUNK", 7)  # every element and number straddles a chunk
    items = [
        {"external_id": f"org-{i}", "display_name": f"Org {i} \u00e9", "metadata": {"n": 12345 + i}}
        for i in range(40)
    ]
    path = write("orgs.json", json.dumps(items, indent=2))
    result = rows(open_file_source("organization", path))
    assert [r.data for r in result] == items
    assert [r.number for r in result] == list(range(1, 41))


def test_json_syntax_error_keeps_earlier_elements_and_says_where(write):
    path = write(
        "users.json",
        '[\n {"email": "a@example.com"},\n {"email": "b@example.com"\n {"email": "c"}\n]',
    )
    result = rows(open_file_source("user", path))
    assert result[0].data == {"email": "a@example.com"}
    assert result[1].error == (
        "invalid JSON: Expecting ',' delimiter at line 4; the rest of the file was not read"
    )
    assert len(result) == 2


def test_json_non_object_elements_and_top_level(write):
    result = rows(open_file_source("user", write("u.json", '[{"email": "a@example.com"}, 3, "x"]')))
    assert [r.error for r in result] == [
        "",
        "expected a JSON object, got int",
        "expected a JSON object, got str",
    ]
    with pytest.raises(SourceError, match="expected a JSON array"):
        rows(open_file_source("user", write("u2.json", '{"users": []}')))
    result = rows(open_file_source("user", write("u3.json", '[{"email": "a@example.com"}')))
    assert result[-1].error.startswith("the file ends inside the array")


def test_checksum_is_the_files_sha256_even_when_reading_stops_early(write):
    content = '[{"email": "a@example.com"}, {broken] trailing bytes'
    path = write("u.json", content)
    source = open_file_source("user", path)
    rows(source)
    assert source.info.checksum == hashlib.sha256(content.encode()).hexdigest()


def test_unknown_format(write):
    with pytest.raises(SourceError, match="unknown format 'xml'"):
        open_file_source("user", write("u.xml", ""))


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_memory_does_not_grow_with_the_file(tmp_path, fmt, settings):
    def make(count: int):
        path = tmp_path / f"users-{count}.{fmt}"
        with path.open("w") as out:
            if fmt == "csv":
                out.write("email,external_id,first_name\n")
                for i in range(count):
                    out.write(f"user{i}@example.com,{i},Name {i}\n")
            elif fmt == "ndjson":
                for i in range(count):
                    out.write(
                        json.dumps({"email": f"user{i}@example.com", "external_id": str(i)}) + "\n"
                    )
            else:
                out.write("[")
                for i in range(count):
                    out.write(
                        ("," if i else "")
                        + json.dumps({"email": f"user{i}@example.com", "external_id": str(i)})
                    )
                out.write("]")
        return path

    def peak(path) -> int:
        # In a fresh process: tracemalloc counts every thread's allocations, and the session's
        # emulator and server threads would otherwise add to the peak at random.
        script = (
            "import collections, django, tracemalloc, sys; django.setup();"
            "from migration.sources import open_file_source;"
            "tracemalloc.start();"
            "collections.deque(open_file_source('user', sys.argv[1]).rows(), maxlen=0);"
            "print(tracemalloc.get_traced_memory()[1])"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
            check=True,
        )
        return int(done.stdout.strip().splitlines()[-1])

    small, large = peak(make(1_000)), peak(make(20_000))
    assert large < 1_000_000, f"reading 20k rows peaked at {large} bytes"
    assert large < small * 1.5 + 100_000, (small, large)


def test_role_names_from_group_names():
    assert role_name_for_group("Content Editors", 1) == "content_editors"
    assert role_name_for_group("  R&D / Ops ", 2) == "r_d_ops"
    assert role_name_for_group("Équipe Café", 3) == "equipe_cafe"  # accents dropped


@pytest.mark.parametrize("name", ["Редакторы", "Sales Россия", "営業", "!!!", ""])
def test_group_names_without_an_ascii_form_become_group_and_key(name):
    """Never an empty or truncated name: the role of a group Scalekit cannot spell is its key."""
    assert role_name_for_group(name, 42) == "group_42"
    assert role_name_for_group(name, "8f14e45f-ceea") == "group_8f14e45f_ceea"


@pytest.mark.django_db
def test_database_source_exports_users_groups_and_tenants():
    editors = Group.objects.create(name="Content Editors")
    editors.permissions.add(Permission.objects.get(codename="change_user"))
    acme = Group.objects.create(name="acme")
    alice = User.objects.create_user("alice", "Alice@Example.com", first_name="Alice")
    alice.groups.add(editors, acme)
    User.objects.create_user("bob", "bob@example.com")
    User.objects.create_user("gone", "gone@example.com", is_active=False)
    settings = {
        "ORGANIZATION_MODEL": "auth.Group",
        "ORGANIZATION_NAME_FIELD": "name",
        "ORGANIZATION_EXTERNAL_ID_FIELD": "name",
        "ORGANIZATION_MEMBERS_FIELD": "user",
        "ROLE_PERMISSIONS": True,
    }
    with override_settings(MIGRATION=settings):
        roles = rows(DatabaseSource("role"))
        organizations = rows(DatabaseSource("organization"))
        source = DatabaseSource("user")
        users = rows(source)
    assert [r.data for r in roles] == [
        {
            "name": "content_editors",
            "display_name": "Content Editors",
            "description": "Django group 'Content Editors'",
            "permissions": ["auth:change_user"],
        },
        {
            "name": "acme",
            "display_name": "acme",
            "description": "Django group 'acme'",
            "permissions": [],
        },
    ]
    assert [r.data["external_id"] for r in organizations] == ["Content Editors", "acme"]
    assert [r.data for r in users] == [
        {
            "email": "Alice@example.com",  # create_user normalised the domain
            "external_id": str(alice.pk),
            "first_name": "Alice",
            "memberships": [
                {"organization": "Content Editors", "roles": ["content_editors", "acme"]},
                {"organization": "acme", "roles": ["content_editors", "acme"]},
            ],
        },
        {
            "email": "bob@example.com",
            "external_id": str(User.objects.get(username="bob").pk),
            "memberships": [],
        },
    ]
    assert users[0].location == f"auth.User pk={alice.pk}"
    assert len(source.info.checksum) == 64


@pytest.mark.django_db
def test_database_source_reports_groups_that_become_the_same_role_and_their_users():
    from migration.ingest import create_run

    russian = Group.objects.create(name="Редакторы")
    sales = Group.objects.create(name="Sales EU")
    other_sales = Group.objects.create(name="sales-eu")
    support = Group.objects.create(name="Support")
    alice = User.objects.create_user("alice", "alice@example.com")
    alice.groups.add(russian)
    bob = User.objects.create_user("bob", "bob@example.com")
    bob.groups.add(other_sales, support)
    carol = User.objects.create_user("carol", "carol@example.com")
    carol.groups.add(support)
    with override_settings(MIGRATION={"DEFAULT_ORGANIZATION": {"external_id": "default"}}):
        run = create_run(
            [DatabaseSource("role"), DatabaseSource("organization"), DatabaseSource("user")]
        )

    roles = {r.location: r for r in run.records.filter(kind="role")}
    assert (
        roles[f"auth.Group pk={russian.pk}"].status,
        roles[f"auth.Group pk={russian.pk}"].key,
    ) == (
        "pending",
        f"group_{russian.pk}",
    )
    assert roles[f"auth.Group pk={russian.pk}"].payload["display_name"] == "Редакторы"
    for group, other in ((sales, other_sales), (other_sales, sales)):
        record = roles[f"auth.Group pk={group.pk}"]
        assert (record.status, record.error_code) == ("invalid", "role_name_collision")
        assert record.last_error == (
            f"name: group {group.name!r} becomes role 'sales_eu', like group {other.name!r}: the "
            "groups would merge into one role; rename one of them"
        )
    assert roles[f"auth.Group pk={support.pk}"].status == "pending"

    users = {r.location: r for r in run.records.filter(kind="user")}
    assert users[f"auth.User pk={alice.pk}"].payload["memberships"] == [
        {"organization": "default", "roles": [f"group_{russian.pk}"]}
    ]
    bob_record = users[f"auth.User pk={bob.pk}"]
    assert (bob_record.status, bob_record.error_code) == ("invalid", "role_name_collision")
    assert bob_record.last_error == (
        "memberships: group 'sales-eu' becomes role 'sales_eu', like group 'Sales EU': the "
        "groups would merge into one role; rename one of them"
    )
    assert users[f"auth.User pk={carol.pk}"].payload["memberships"] == [
        {"organization": "default", "roles": ["support"]}
    ]


@pytest.mark.django_db
def test_database_source_null_external_ids_are_missing_not_none():
    from django.contrib.admin.models import ADDITION, LogEntry

    from migration.ingest import create_run

    alice = User.objects.create_user("alice", "alice@example.com")
    bob = User.objects.create_user("bob", "bob@example.com")
    # A tenant model whose external-id column is null for one tenant (LogEntry.object_id is).
    acme = LogEntry.objects.create(
        user=alice, object_id="t-1", object_repr="Acme", action_flag=ADDITION
    )
    nameless = LogEntry.objects.create(
        user=bob, object_id=None, object_repr="Nameless", action_flag=ADDITION
    )
    settings = {
        "USER_EXTERNAL_ID_FIELD": "last_login",  # null: the users never logged in
        "ORGANIZATION_MODEL": "admin.LogEntry",
        "ORGANIZATION_EXTERNAL_ID_FIELD": "object_id",
        "ORGANIZATION_NAME_FIELD": "object_repr",
        "ORGANIZATION_MEMBERS_FIELD": "user",
        "ROLE_SOURCE": "none",
    }
    with override_settings(MIGRATION=settings):
        assert [r.data["external_id"] for r in rows(DatabaseSource("user"))] == ["", ""]
        run = create_run([DatabaseSource("organization"), DatabaseSource("user")])

    organizations = {r.location: r for r in run.records.filter(kind="organization")}
    found = organizations[f"admin.LogEntry pk={acme.pk}"]
    assert (found.status, found.key) == ("pending", "t-1")
    missing = organizations[f"admin.LogEntry pk={nameless.pk}"]
    assert (missing.status, missing.last_error) == ("invalid", "external_id: is required")
    alice_record = run.records.get(kind="user", location=f"auth.User pk={alice.pk}")
    assert (alice_record.status, alice_record.key) == ("pending", "email:alice@example.com")
    assert alice_record.payload["external_id"] == ""
    bob_record = run.records.get(kind="user", location=f"auth.User pk={bob.pk}")
    assert (bob_record.status, bob_record.error_code) == ("invalid", "missing_organization_id")
    assert "has no object_id (null or empty)" in bob_record.last_error
