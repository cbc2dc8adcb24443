from __future__ import annotations

import pytest

from migration.validation import (
    RowInvalid,
    normalize_email,
    validate_organization,
    validate_role,
    validate_user,
)


def invalid(func, *args) -> RowInvalid:
    with pytest.raises(RowInvalid) as exc:
        func(*args)
    return exc.value


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("  Alice@Example.COM ", "Alice@example.com"),
        ("bob+tag@sub.example.org", "bob+tag@sub.example.org"),
        ("carol@bücher.example", "carol@xn--bcher-kva.example"),
    ],
)
def test_email_normalisation(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw,reason",
    [
        ("", "is required"),
        ("no-at-sign", "no '@'"),
        ("a@b@", "nothing after the '@'"),
        ("@example.com", "nothing before the '@'"),
        ("a@b@example.com", "not a valid email"),
        ('"quoted"@example.com', "not a valid email"),
        ("josé@example.com", "ASCII local parts only"),
        ("x" * 250 + "@example.com", "the limit is 254"),
        ("a@-bad-.com", "not a valid email"),
    ],
)
def test_bad_emails_are_named(raw, reason):
    error = invalid(normalize_email, raw)
    assert error.field == "email"
    assert reason in error.reason


def test_bad_encoding_names_the_byte_and_position():
    value = "Ren\udce9"  # b"Ren\xe9" decoded with surrogateescape
    error = invalid(
        validate_user, {"email": "r@example.com", "first_name": value, "org_external_id": "acme"}
    )
    assert error.code == "bad_encoding"
    assert str(error) == (
        "first_name: byte 0xE9 at character 4 is not valid UTF-8 (was the file saved as Latin-1 or "
        "Windows-1252? export it as UTF-8)"
    )


def test_control_characters_are_refused():
    error = invalid(
        validate_user, {"email": "a@example.com", "last_name": "a\x00b", "org_external_id": "acme"}
    )
    assert error.code == "bad_encoding" and "U+0000" in error.reason


def test_user_is_normalised():
    payload = validate_user(
        {
            "email": "Alice@Example.com",
            "external_id": 42,
            "first_name": " Alice ",
            "email_verified": "Yes",
            "memberships": [{"organization": "acme", "roles": ["admin", "admin"]}, "globex"],
            "metadata": {"team": "red", "floor": 3},
        }
    )
    assert payload == {
        "email": "Alice@example.com",
        "external_id": "42",
        "first_name": "Alice",
        "last_name": "",
        "email_verified": True,
        "memberships": [
            {"organization": "acme", "roles": ["admin"]},
            {"organization": "globex", "roles": []},
        ],
        "metadata": {"team": "red", "floor": "3"},
    }


def test_single_membership_shorthand_merges_with_memberships():
    payload = validate_user(
        {
            "email": "a@example.com",
            "org_external_id": "acme",
            "roles": ["member"],
            "memberships": [{"organization": "acme", "roles": ["admin"]}],
        }
    )
    assert payload["memberships"] == [{"organization": "acme", "roles": ["admin", "member"]}]


def test_user_without_organization():
    error = invalid(validate_user, {"email": "a@example.com"})
    assert error.code == "no_organization"
    payload = validate_user({"email": "a@example.com"}, "default")
    assert payload["memberships"] == [{"organization": "default", "roles": []}]


@pytest.mark.parametrize(
    "data,field,reason",
    [
        ({"first_name": "x" * 256}, "first_name", "256 characters long; the limit is 255"),
        ({"external_id": "x" * 511}, "external_id", "the limit is 510"),
        ({"metadata": {"ab": "v"}}, "metadata.ab", "keys must be 3-25 characters"),
        ({"metadata": {"k" * 26: "v"}}, "metadata." + "k" * 26, "keys must be 3-25 characters"),
        ({"metadata": {"key": "v" * 257}}, "metadata.key", "values must be 1-256 characters"),
        (
            {"metadata": {f"key{i}": "v" for i in range(21)}},
            "metadata",
            "21 pairs; the limit is 20",
        ),
        ({"metadata": {"key": {"nested": 1}}}, "metadata.key", "must be a string"),
        ({"memberships": [{"organization": "acme", "roles": ["bad role"]}]}, "roles", "must match"),
        ({"email_verified": "maybe"}, "email_verified", "not a boolean"),
        ({"nickname": "x"}, "nickname", "unknown field"),
        ({"roles": ["admin"]}, "roles", "without org_external_id"),
    ],
)
def test_user_field_limits(data, field, reason):
    row = {"email": "a@example.com", "org_external_id": "acme", **data}
    if "memberships" in data or "roles" in data:
        row.pop("org_external_id")
    error = invalid(validate_user, row)
    assert error.field == field
    assert reason in error.reason


def test_organization_limits():
    assert validate_organization({"external_id": "acme"}) == {
        "external_id": "acme",
        "display_name": "acme",
        "metadata": {},
    }
    assert invalid(validate_organization, {"display_name": "x"}).reason == "is required"
    error = invalid(validate_organization, {"external_id": "a", "display_name": "x" * 201})
    assert error.field == "display_name" and "the limit is 200" in error.reason
    error = invalid(
        validate_organization, {"external_id": "a", "metadata": {f"key{i}": "v" for i in range(11)}}
    )
    assert "11 pairs; the limit is 10" in error.reason


def test_role_rules():
    assert validate_role({"name": "content_editor", "permissions": "a:b|c"}) == {
        "name": "content_editor",
        "display_name": "content_editor",
        "description": "",
        "permissions": ["a:b", "c"],
    }
    assert invalid(validate_role, {"name": "content-editor"}).code == "invalid_role_name"
    assert invalid(validate_role, {"name": "x" * 65}).code == "invalid_role_name"
    assert invalid(validate_role, {"name": "r", "display_name": "x" * 101}).code == "too_long"
    assert (
        invalid(validate_role, {"name": "r", "permissions": ["read content"]}).code
        == "invalid_permission"
    )
    assert (
        invalid(validate_role, {"name": "r", "permissions": [f"p{i}" for i in range(101)]}).code
        == "too_long"
    )
    assert (
        validate_role({"name": "r", "description": "line one\nline two"})["description"]
        == "line one\nline two"
    )
