"""CSV sources: one file per kind, a header row, UTF-8 (a BOM is accepted).

Columns are documented in ``migration/README.md``. ``metadata.<key>`` columns become metadata
pairs; list cells (roles, permissions) are separated by ``|``; a user's ``memberships`` cell is
``org_a:role1|role2;org_b`` (organizations separated by ``;``, roles after the last ``:``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from .base import MAX_ROW_BYTES, FileSource, HashingReader, SourceError, SourceRow

COLUMNS = {
    "role": {"name", "display_name", "description", "permissions"},
    "organization": {"external_id", "display_name"},
    "user": {
        "email",
        "external_id",
        "first_name",
        "last_name",
        "email_verified",
        "org_external_id",
        "roles",
        "memberships",
    },
}
REQUIRED = {"role": {"name"}, "organization": {"external_id"}, "user": {"email"}}
METADATA_PREFIX = "metadata."

csv.field_size_limit(MAX_ROW_BYTES)


class CsvSource(FileSource):
    format = "csv"

    def parse(self, stream: HashingReader) -> Iterator[SourceRow]:
        text = io.TextIOWrapper(
            io.BufferedReader(stream), encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(f"{self.path}: the header row cannot be read: {exc}.") from exc
        header = [name.strip() for name in header]
        self.check_header(header)
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield SourceRow(
                    start,
                    self.where(start),
                    error=f"malformed CSV: {exc}",
                    error_code="malformed_row",
                )
                continue
            if not cells or cells == [""]:
                continue
            if len(cells) != len(header):
                yield SourceRow(
                    start,
                    self.where(start),
                    error=f"the row has {len(cells)} fields but the header has {len(header)}",
                    error_code="malformed_row",
                )
                continue
            yield SourceRow(start, self.where(start), data=self.to_data(header, cells))

    def check_header(self, header: list[str]) -> None:
        allowed = COLUMNS[self.kind]
        unknown = [
            name for name in header if name not in allowed and not self.is_metadata_column(name)
        ]
        if unknown:
            raise SourceError(
                f"{self.path}: unknown column(s) {', '.join(map(repr, unknown))} for {self.kind} "
                f"rows; expected {', '.join(sorted(allowed))}"
                + (" and metadata.<key>" if self.kind != "role" else "")
                + "."
            )
        missing = REQUIRED[self.kind] - set(header)
        if missing:
            raise SourceError(
                f"{self.path}: required column(s) missing: {', '.join(sorted(missing))}."
            )
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise SourceError(f"{self.path}: column(s) repeated: {', '.join(duplicated)}.")

    def is_metadata_column(self, name: str) -> bool:
        return self.kind != "role" and name.startswith(METADATA_PREFIX)

    def to_data(self, header: list[str], cells: list[str]) -> dict:
        data: dict = {}
        metadata: dict[str, str] = {}
        for name, value in zip(header, cells, strict=True):
            if self.is_metadata_column(name):
                if value != "":
                    metadata[name[len(METADATA_PREFIX) :]] = value
            elif value.strip() != "":
                data[name] = value
        if metadata:
            data["metadata"] = metadata
        for name in ("roles", "permissions"):
            if name in data:
                data[name] = split_list(data[name], "|")
        if "memberships" in data:
            data["memberships"] = parse_memberships(data["memberships"])
        return data


def split_list(value: str, separator: str) -> list[str]:
    return [item.strip() for item in value.split(separator) if item.strip()]


def parse_memberships(value: str) -> list[dict]:
    """``org_a:admin|member;org_b`` -> ``[{"organization": "org_a", "roles": [...]}, ...]``.

    Role names cannot contain ``:``, so the roles are what follows the last ``:``; an
    organization id that itself contains ``:`` must be followed by ``:`` (and its roles).
    """
    memberships = []
    for entry in value.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        organization, sep, roles = entry.rpartition(":")
        if not sep:
            organization, roles = entry, ""
        memberships.append({"organization": organization.strip(), "roles": split_list(roles, "|")})
    return memberships
