from __future__ import annotations

import pytest
from django.test import override_settings

from migration.ingest import create_run
from migration.models import ImportRecord, ImportRun
from migration.sources import SourceError, open_file_source

Status = ImportRecord.Status

CORRUPT_USERS = (
    "email,external_id,first_name,last_name,email_verified,memberships,metadata.team\n"
    "alice@example.com,u1,Alice,A,true,acme:admin;globex:editor,red\n"  # 2 ok
    "bob@example.com,u2,Bob,B,false,acme,\n"  # 3 ok
    "not-an-email,u3,Bad,Row,true,acme,\n"  # 4
    "carol@example.com,u4,Carol,C,maybe,acme,\n"  # 5
    "dave@example.com,u5,Dave,D,true,unknown_org,\n"  # 6
    "ALICE@example.com,u6,Dup,Row,true,acme,\n"  # 7
    "frank@example.com,u1,Frank,F,true,acme,\n"  # 8
    "gina@example.com,u8,Gina,G,true,acme,ab\n"  # 9 (metadata.team ok: 2 chars value is fine)
    "hank@example.com,u9,Hank,H,true,acme:bad-role,\n"  # 10
    "ivy@example.com,u10,Ivy,I,true,,\n"  # 11
    "jo@example.com,u11,Jo,J,true,acme,x,extra\n"  # 12
)


def ingest(*sources, **kwargs) -> ImportRun:
    return create_run([open_file_source(kind, path) for kind, path in sources], **kwargs)


@pytest.mark.django_db
def test_each_bad_row_gets_its_row_number_and_a_specific_reason(write, organizations_csv):
    users = write("users.csv", CORRUPT_USERS)
    run = ingest(("organization", organizations_csv), ("user", users))
    invalid = {
        r.row_number: r.last_error for r in run.records.filter(kind="user", status=Status.INVALID)
    }
    assert invalid == {
        4: "email: 'not-an-email' is not an email address (no '@')",
        5: "email_verified: 'maybe' is not a boolean (use true or false)",
        6: "memberships: unknown organization 'unknown_org' (not in the organizations source)",
        7: f"duplicate email 'alice@example.com': first seen at {users} line 2",
        8: f"duplicate external_id 'u1': first seen at {users} line 2",
        10: "roles: role name 'bad-role' must match ^[a-zA-Z0-9_]{1,64}$ (letters, digits, underscore)",
        11: "memberships: the user belongs to no organization; Scalekit creates users inside one (add org_external_id, or set MIGRATION['DEFAULT_ORGANIZATION'])",
        12: "the row has 8 fields but the header has 7",
    }
    good = run.records.filter(kind="user", status=Status.PENDING).order_by("row_number")
    assert [r.row_number for r in good] == [2, 3, 9]
    assert good[0].payload["memberships"] == [
        {"organization": "acme", "roles": ["admin"]},
        {"organization": "globex", "roles": ["editor"]},
    ]
    assert run.options["referenced_roles"] == ["admin", "editor"]
    assert run.count("invalid") == 8 and run.count("pending") == 2 + 3


@pytest.mark.django_db
def test_duplicates_are_found_across_chunks(write, organizations_csv, monkeypatch):
    from migration import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "CHUNK", 2)
    lines = ["email,external_id,org_external_id"] + [
        f"user{i}@example.com,{i},acme" for i in range(5)
    ]
    lines += ["USER1@example.com,100,acme", "new@example.com,3,acme"]
    run = ingest(
        ("organization", organizations_csv), ("user", write("u.csv", "\n".join(lines) + "\n"))
    )
    errors = list(
        run.records.filter(status=Status.INVALID)
        .order_by("row_number")
        .values_list("row_number", "error_code")
    )
    assert errors == [(7, "duplicate"), (8, "duplicate")]


@pytest.mark.django_db
def test_organization_rejected_in_the_source_is_named(write):
    orgs = write("o.csv", "external_id,display_name\nacme," + "x" * 201 + "\nacme,Again\n")
    users = write("u.csv", "email,org_external_id\na@example.com,acme\n")
    run = ingest(("organization", orgs), ("user", users))
    assert list(run.records.order_by("id").values_list("kind", "status", "last_error")) == [
        ("organization", "invalid", "display_name: is 201 characters long; the limit is 200"),
        ("organization", "pending", ""),
        ("user", "pending", ""),
    ]


@pytest.mark.django_db
def test_default_organization_is_added_when_configured(write):
    users = write("u.csv", "email\na@example.com\n")
    with override_settings(
        MIGRATION={"DEFAULT_ORGANIZATION": {"external_id": "everyone", "display_name": "Everyone"}}
    ):
        run = ingest(("user", users))
    organization = run.records.get(kind="organization")
    assert organization.payload == {
        "external_id": "everyone",
        "display_name": "Everyone",
        "metadata": {},
    }
    assert run.records.get(kind="user").payload["memberships"] == [
        {"organization": "everyone", "roles": []}
    ]


@pytest.mark.django_db
def test_source_checksum_and_details_are_recorded(write, organizations_csv):
    run = ingest(("organization", organizations_csv))
    assert run.source == f"organizations={organizations_csv}"
    assert run.source_detail[0]["rows"] == 2 and run.source_detail[0]["format"] == "csv"
    again = ingest(("organization", organizations_csv))
    assert run.checksum == again.checksum and len(run.checksum) == 64


@pytest.mark.django_db
def test_unreadable_source_fails_the_run_with_the_reason(write):
    with pytest.raises(SourceError):
        ingest(("user", write("u.csv", "emial\nx\n")))
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED
    assert "unknown column(s) 'emial'" in run.message


@pytest.mark.django_db
def test_ledger_writes_are_batched(write, organizations_csv, django_assert_max_num_queries):
    lines = ["email,external_id,org_external_id"] + [
        f"user{i}@example.com,{i},acme" for i in range(1200)
    ]
    users = write("u.csv", "\n".join(lines) + "\n")
    sources = [open_file_source("organization", organizations_csv), open_file_source("user", users)]
    # 1,202 rows: a few queries per 500-row chunk, not one per row. (SQLite's 999 bound
    # parameters split each chunk's INSERT into ~43-row statements; PostgreSQL takes 500.)
    with django_assert_max_num_queries(40):
        run = create_run(sources)
    assert run.records.filter(status=Status.PENDING).count() == 1202


@pytest.mark.django_db
def test_external_ids_that_look_like_email_keys_are_other_users(write, organizations_csv):
    """External id ``email:x@...`` and a user x@... without one used to share a key: the ledger
    write failed (IntegrityError) and left the run pending in the ingest phase."""
    users = write(
        "users.csv",
        "email,external_id,org_external_id\n"
        "z@example.com,email:x@example.com,acme\n"
        "x@example.com,,acme\n"
        "y@example.com,ext:email:x@example.com,acme\n"
        "w@example.com,u1,acme\n",
    )
    run = ingest(("organization", organizations_csv), ("user", users))
    keys = dict(run.records.filter(kind="user").values_list("email", "key"))
    assert keys == {
        "z@example.com": "ext:email:x@example.com",
        "x@example.com": "email:x@example.com",
        "y@example.com": "ext:ext:email:x@example.com",
        "w@example.com": "u1",  # plain external ids keep the key they always had
    }
    assert run.count("pending") == 2 + 4 and run.count("invalid") == 0
    assert run.phase == ImportRun.Phase.ROLES


@pytest.mark.django_db
def test_duplicate_escaped_external_ids_are_still_duplicates(write, organizations_csv):
    users = write(
        "users.csv",
        "email,external_id,org_external_id\n"
        "a@example.com,email:x@example.com,acme\n"
        "b@example.com,email:x@example.com,acme\n",
    )
    run = ingest(("organization", organizations_csv), ("user", users))
    second = run.records.get(kind="user", row_number=3)
    assert (second.status, second.error_code) == (Status.INVALID, "duplicate")
    assert second.last_error.startswith("duplicate external_id 'email:x@example.com'")


@pytest.mark.django_db(transaction=True)
def test_a_source_that_breaks_while_read_fails_the_run_in_the_ingest_phase(
    write, organizations_csv
):
    """A read error past the first chunk (a disk, a network share: a fake, since a real one
    cannot be produced on demand) leaves part of the source in the ledger."""
    from migration import ingest as ingest_module

    source = open_file_source("user", write("u.csv", "email,org_external_id\n"))

    def rows():
        for number in range(2, ingest_module.CHUNK + 10):
            yield ingest_module.SourceRow(
                number, f"u.csv line {number}", data={"email": f"u{number}@example.com"}
            )
        raise OSError("Input/output error")

    source.rows = rows
    with pytest.raises(OSError):
        create_run([open_file_source("organization", organizations_csv), source])
    run = ImportRun.objects.get()
    assert (run.status, run.phase, run.checksum) == (ImportRun.Status.FAILED, "ingest", "")
    assert run.message == "reading the source failed (OSError); see the log"
    assert run.records.filter(kind="user").count() == ingest_module.CHUNK


@pytest.mark.django_db
def test_invalid_rows_keep_the_email_and_external_id_they_hold(write, organizations_csv, command):
    """The failures export names whom an invalid row is about, whenever its fields can be read."""
    import csv
    import io

    users = write(
        "users.csv",
        CORRUPT_USERS.encode()
        + b"root@example.com,legacy-root,,,true,,\n"  # 13: no organization
        + b"Bad\xffByte@example.com,u13,,,true,acme,\n",  # 14: a byte that is not UTF-8
    )
    run = ingest(("organization", organizations_csv), ("user", users))
    exported = command("migration_export_failures", run.pk)
    rows = {
        int(row["row_number"]): (row["email"], row["external_id"], row["error_code"])
        for row in csv.DictReader(io.StringIO(exported.out))
    }
    assert rows == {
        4: ("not-an-email", "u3", "invalid_email"),
        5: ("carol@example.com", "u4", "invalid_field"),
        6: ("dave@example.com", "u5", "unknown_organization"),
        7: ("alice@example.com", "u6", "duplicate"),
        8: ("frank@example.com", "u1", "duplicate"),
        10: ("hank@example.com", "u9", "invalid_role_name"),
        11: ("ivy@example.com", "u10", "no_organization"),
        12: ("", "", "malformed_row"),  # its fields do not match the header: none is read
        13: ("root@example.com", "legacy-root", "no_organization"),
        14: ("", "u13", "bad_encoding"),
    }


@pytest.mark.django_db
def test_invalid_rows_from_the_database_keep_the_users_email_and_external_id():
    from django.contrib.auth.models import Group, User

    from migration.sources import DatabaseSource

    sales, other = Group.objects.create(name="Sales EU"), Group.objects.create(name="sales-eu")
    bob = User.objects.create_user("bob", "Bob@Example.com")
    bob.groups.add(sales, other)
    with override_settings(MIGRATION={"DEFAULT_ORGANIZATION": {"external_id": "default"}}):
        run = create_run(
            [DatabaseSource("role"), DatabaseSource("organization"), DatabaseSource("user")]
        )
    record = run.records.get(kind="user")
    assert (record.status, record.error_code) == (Status.INVALID, "role_name_collision")
    assert (record.email, record.external_id) == ("bob@example.com", str(bob.pk))
