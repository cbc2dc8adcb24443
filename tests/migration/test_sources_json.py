"""JSON and NDJSON sources: values nested deeper than the parser follows are bad rows, not a crash
(the rest of ``test_sources.py`` covers the other cases)."""

from __future__ import annotations

import pytest

from migration.ingest import create_run
from migration.models import ImportRecord
from migration.sources import open_file_source
from migration.sources.ndjson import NESTING_ERROR

DEEP = 100_000  # far past Python's recursion limit, and under MAX_ROW_BYTES


@pytest.mark.django_db
def test_ndjson_line_nested_too_deeply_is_one_invalid_row(write, organizations_csv):
    path = write(
        "users.ndjson",
        '{"email": "a@example.com", "org_external_id": "acme"}\n'
        + "[" * DEEP
        + "\n"
        + '{"email": "b@example.com", "org_external_id": "acme", "metadata": '
        + '{"k": ' * DEEP
        + "1"
        + "}" * DEEP
        + "}\n"
        + '{"email": "c@example.com", "org_external_id": "acme"}\n',
    )
    run = create_run(
        [open_file_source("organization", organizations_csv), open_file_source("user", path)]
    )
    users = {r.row_number: r for r in run.records.filter(kind="user")}
    assert {n: (r.status, r.error_code, r.last_error) for n, r in users.items() if n in (2, 3)} == {
        2: ("invalid", "malformed_row", f"invalid JSON: {NESTING_ERROR}"),
        3: ("invalid", "malformed_row", f"invalid JSON: {NESTING_ERROR}"),
    }
    assert users[1].status == users[4].status == ImportRecord.Status.PENDING
    assert "nested too deeply" in NESTING_ERROR


@pytest.mark.django_db
def test_json_element_nested_too_deeply_ends_the_file_and_says_so(write):
    path = write(
        "orgs.json",
        '[{"external_id": "acme"},\n {"external_id": "deep", "metadata": '
        + '{"k": ' * DEEP
        + "1"
        + "}" * DEEP
        + '},\n {"external_id": "globex"}]',
    )
    rows = list(open_file_source("organization", path).rows())
    assert [(r.number, r.error_code, r.error) for r in rows] == [
        (1, "", ""),
        (
            2,
            "malformed_file",
            f"invalid JSON: an element has {NESTING_ERROR}; the rest of the file was not read",
        ),
    ]
    run = create_run([open_file_source("organization", path)])
    assert dict(run.records.values_list("row_number", "status")) == {1: "pending", 2: "invalid"}
