"""Validation of one row, before anything is sent: the limits Scalekit's API enforces.

Each ``validate_*`` takes the raw data of a row and returns the normalised payload, or raises
``RowInvalid`` naming the field and what is wrong. The limits are the ``buf.validate`` rules in
the SDK's protobuf descriptors (``scalekit.v1.*``); rows within the source (duplicates, unknown
references) are checked by ``migration.ingest`` against the ledger.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

# Scalekit's `email: true` rule (protovalidate) is the WHATWG HTML "valid email address":
# ASCII only, no quoted local parts, no IP literals.
EMAIL_RE = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
EMAIL_MAX = 254
EXTERNAL_ID_MAX = 510  # GetUser.external_id: 1-510
NAME_MAX = 255  # CreateUserProfile.given_name / family_name
ORG_DISPLAY_NAME_MAX = 200  # CreateOrganization.display_name: 1-200
METADATA_KEY_MIN, METADATA_KEY_MAX = 3, 25
METADATA_VALUE_MIN, METADATA_VALUE_MAX = 1, 256
USER_METADATA_PAIRS = 20
ORG_METADATA_PAIRS = 10
ROLE_NAME_RE = re.compile(r"^[a-zA-Z0-9_]{1,64}$")
ROLE_DISPLAY_NAME_MAX = 100
ROLE_DESCRIPTION_MAX = 2000
ROLE_PERMISSIONS_MAX = 100
PERMISSION_RE = re.compile(r"^[a-zA-Z0-9_:]{1,64}$")

TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f", ""}

ROLE_FIELDS = {"name", "display_name", "description", "permissions"}
ORGANIZATION_FIELDS = {"external_id", "display_name", "metadata"}
USER_FIELDS = {
    "email",
    "external_id",
    "first_name",
    "last_name",
    "email_verified",
    "memberships",
    "org_external_id",
    "roles",
    "metadata",
}


@dataclass
class RowInvalid(Exception):
    """A row that cannot be imported: which field, why, and a short code for filtering."""

    field: str
    reason: str
    code: str = "invalid_field"

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def check_encoding(field: str, value: str, *, multiline: bool = False) -> None:
    """Refuse undecodable bytes (kept as lone surrogates by the readers) and control characters."""
    for index, char in enumerate(value):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            raise RowInvalid(
                field,
                f"byte 0x{code - 0xDC00:02X} at character {index + 1} is not valid UTF-8 "
                "(was the file saved as Latin-1 or Windows-1252? export it as UTF-8)",
                "bad_encoding",
            )
        if 0xD800 <= code <= 0xDFFF:
            raise RowInvalid(
                field, f"invalid character U+{code:04X} at character {index + 1}", "bad_encoding"
            )
        if (code < 0x20 or code == 0x7F) and not (multiline and char in "\t\n\r"):
            raise RowInvalid(
                field, f"control character U+{code:04X} at character {index + 1}", "bad_encoding"
            )


def text(
    data: dict[str, Any],
    field: str,
    *,
    required: bool = False,
    max_len: int | None = None,
    min_len: int = 1,
    multiline: bool = False,
) -> str:
    value = data.get(field)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise RowInvalid(field, "is required", "missing_field")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowInvalid(field, f"must be a string, not {type(value).__name__}", "invalid_field")
    value = unicodedata.normalize("NFC", str(value).strip())
    check_encoding(field, value, multiline=multiline)
    if len(value) < min_len:
        raise RowInvalid(field, f"must be at least {min_len} characters", "too_short")
    if max_len is not None and len(value) > max_len:
        raise RowInvalid(
            field, f"is {len(value)} characters long; the limit is {max_len}", "too_long"
        )
    return value


def normalize_email(value: Any) -> str:
    """Trim, lower-case the domain and turn an internationalised domain into its ASCII form."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowInvalid("email", "is required", "missing_field")
    if not isinstance(value, str):
        raise RowInvalid("email", f"must be a string, not {type(value).__name__}", "invalid_email")
    value = unicodedata.normalize("NFC", value.strip())
    check_encoding("email", value)
    local, at, domain = value.rpartition("@")
    if not at:
        raise RowInvalid("email", f"{value!r} is not an email address (no '@')", "invalid_email")
    if not local or not domain:
        where = "before" if not local else "after"
        raise RowInvalid(
            "email", f"{value!r} is not an email address (nothing {where} the '@')", "invalid_email"
        )
    try:
        domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise RowInvalid("email", f"{value!r} has an invalid domain", "invalid_email") from None
    email = f"{local}@{domain}"
    if len(email) > EMAIL_MAX:
        raise RowInvalid(
            "email", f"is {len(email)} characters long; the limit is {EMAIL_MAX}", "invalid_email"
        )
    if not EMAIL_RE.match(email):
        hint = " (Scalekit accepts ASCII local parts only)" if not local.isascii() else ""
        raise RowInvalid("email", f"{value!r} is not a valid email address{hint}", "invalid_email")
    return email


def email_key(email: str) -> str:
    """The form duplicates are compared in: the whole address in lower case."""
    return email.lower()


def boolean(data: dict[str, Any], field: str, default: bool = False) -> bool:
    value = data.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise RowInvalid(field, f"{value!r} is not a boolean (use true or false)", "invalid_field")


def metadata(data: dict[str, Any], max_pairs: int) -> dict[str, str]:
    value = data.get("metadata")
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise RowInvalid(
            "metadata",
            f"must be an object of strings, not {type(value).__name__}",
            "invalid_metadata",
        )
    if len(value) > max_pairs:
        raise RowInvalid(
            "metadata", f"has {len(value)} pairs; the limit is {max_pairs}", "invalid_metadata"
        )
    result = {}
    for key, item in value.items():
        key = str(key)
        field = f"metadata.{key}"
        check_encoding(field, key)
        if not METADATA_KEY_MIN <= len(key) <= METADATA_KEY_MAX:
            raise RowInvalid(
                field,
                f"key is {len(key)} characters long; keys must be "
                f"{METADATA_KEY_MIN}-{METADATA_KEY_MAX} characters",
                "invalid_metadata",
            )
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        if not isinstance(item, str):
            raise RowInvalid(
                field, f"value must be a string, not {type(item).__name__}", "invalid_metadata"
            )
        check_encoding(field, item)
        if not METADATA_VALUE_MIN <= len(item) <= METADATA_VALUE_MAX:
            raise RowInvalid(
                field,
                f"value is {len(item)} characters long; values must be "
                f"{METADATA_VALUE_MIN}-{METADATA_VALUE_MAX} characters",
                "invalid_metadata",
            )
        result[key] = item
    return result


def string_list(data: dict[str, Any], field: str) -> list[str]:
    value = data.get(field)
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part for part in value.split("|")]
    if not isinstance(value, list):
        raise RowInvalid(
            field, f"must be a list of strings, not {type(value).__name__}", "invalid_field"
        )
    items = []
    for item in value:
        if not isinstance(item, str):
            raise RowInvalid(
                field, f"must be a list of strings; found {type(item).__name__}", "invalid_field"
            )
        item = item.strip()
        if item:
            check_encoding(field, item)
            items.append(item)
    return items


def role_names(data: dict[str, Any], field: str) -> list[str]:
    names = string_list(data, field)
    for name in names:
        if not ROLE_NAME_RE.match(name):
            raise RowInvalid(
                field,
                f"role name {name!r} must match ^[a-zA-Z0-9_]{{1,64}}$ (letters, digits, underscore)",
                "invalid_role_name",
            )
    return list(dict.fromkeys(names))


def reject_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RowInvalid(
            unknown[0],
            f"unknown field (expected {', '.join(sorted(allowed))})",
            "unknown_field",
        )


def validate_role(data: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(data, ROLE_FIELDS)
    name = text(data, "name", required=True)
    if not ROLE_NAME_RE.match(name):
        raise RowInvalid(
            "name",
            f"{name!r} must match ^[a-zA-Z0-9_]{{1,64}}$ (letters, digits, underscore)",
            "invalid_role_name",
        )
    display_name = text(data, "display_name", max_len=ROLE_DISPLAY_NAME_MAX) or name
    description = text(data, "description", max_len=ROLE_DESCRIPTION_MAX, multiline=True)
    permissions = string_list(data, "permissions")
    if len(permissions) > ROLE_PERMISSIONS_MAX:
        raise RowInvalid(
            "permissions",
            f"has {len(permissions)} items; the limit is {ROLE_PERMISSIONS_MAX}",
            "too_long",
        )
    for permission in permissions:
        if not PERMISSION_RE.match(permission):
            raise RowInvalid(
                "permissions",
                f"permission {permission!r} must match ^[a-zA-Z0-9_:]+$ and be 1-64 characters",
                "invalid_permission",
            )
    return {
        "name": name,
        "display_name": display_name,
        "description": description,
        "permissions": list(dict.fromkeys(permissions)),
    }


def validate_organization(data: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(data, ORGANIZATION_FIELDS)
    external_id = text(data, "external_id", required=True, max_len=EXTERNAL_ID_MAX)
    display_name = text(data, "display_name", max_len=ORG_DISPLAY_NAME_MAX) or external_id
    if len(display_name) > ORG_DISPLAY_NAME_MAX:
        raise RowInvalid(
            "display_name",
            f"defaults to the external id, which is longer than {ORG_DISPLAY_NAME_MAX} characters",
            "too_long",
        )
    return {
        "external_id": external_id,
        "display_name": display_name,
        "metadata": metadata(data, ORG_METADATA_PAIRS),
    }


def memberships(data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("memberships")
    result: list[dict[str, Any]] = []
    if raw not in (None, ""):
        if not isinstance(raw, list):
            raise RowInvalid(
                "memberships", f"must be a list, not {type(raw).__name__}", "invalid_membership"
            )
        for index, item in enumerate(raw, start=1):
            if isinstance(item, str):
                item = {"organization": item}
            if not isinstance(item, dict):
                raise RowInvalid(
                    "memberships",
                    f"entry {index} must be an object or a string",
                    "invalid_membership",
                )
            unknown = sorted(set(item) - {"organization", "roles"})
            if unknown:
                raise RowInvalid(
                    "memberships",
                    f"entry {index} has unknown field {unknown[0]!r} (expected organization, roles)",
                    "invalid_membership",
                )
            organization = text(item, "organization", max_len=EXTERNAL_ID_MAX)
            if not organization:
                raise RowInvalid(
                    "memberships", f"entry {index} names no organization", "invalid_membership"
                )
            result.append({"organization": organization, "roles": role_names(item, "roles")})
    single = text(data, "org_external_id", max_len=EXTERNAL_ID_MAX)
    if single:
        result.append({"organization": single, "roles": role_names(data, "roles")})
    elif data.get("roles") not in (None, "", []):
        raise RowInvalid(
            "roles",
            "given without org_external_id (use memberships for several)",
            "invalid_membership",
        )
    merged: dict[str, list[str]] = {}
    for membership in result:
        roles = merged.setdefault(membership["organization"], [])
        roles.extend(role for role in membership["roles"] if role not in roles)
    return [{"organization": org, "roles": roles} for org, roles in merged.items()]


def validate_user(data: dict[str, Any], default_organization: str | None = None) -> dict[str, Any]:
    reject_unknown(data, USER_FIELDS)
    email = normalize_email(data.get("email"))
    external_id = text(data, "external_id", max_len=EXTERNAL_ID_MAX)
    member_of = memberships(data)
    if not member_of:
        if not default_organization:
            raise RowInvalid(
                "memberships",
                "the user belongs to no organization; Scalekit creates users inside one "
                "(add org_external_id, or set MIGRATION['DEFAULT_ORGANIZATION'])",
                "no_organization",
            )
        member_of = [{"organization": default_organization, "roles": []}]
    return {
        "email": email,
        "external_id": external_id,
        "first_name": text(data, "first_name", max_len=NAME_MAX),
        "last_name": text(data, "last_name", max_len=NAME_MAX),
        "email_verified": boolean(data, "email_verified"),
        "memberships": member_of,
        "metadata": metadata(data, USER_METADATA_PAIRS),
    }


VALIDATORS = {"role": validate_role, "organization": validate_organization, "user": validate_user}
