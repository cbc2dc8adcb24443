"""Reading a source into the ledger: validate every row, then write records in chunks.

Rows are read as a stream and written 500 at a time with ``bulk_create``. Checks that need other
rows (duplicate emails and external ids, references to organizations) are made against the
records already written, with one query per chunk, so memory stays flat however long the source
is. A bad row becomes an ``invalid`` record with its row number and reason, and the email and
external id it holds when they can be read (so the failures export names the person); the others
go on.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from .conf import app_settings
from .models import ImportRecord, ImportRun
from .sources import KINDS, SourceRow
from .validation import (
    EMAIL_MAX,
    EXTERNAL_ID_MAX,
    VALIDATORS,
    RowInvalid,
    check_encoding,
    email_key,
    normalize_email,
)

logger = logging.getLogger(__name__)

CHUNK = 500
Kind = ImportRecord.Kind
Status = ImportRecord.Status


@dataclass
class IngestSummary:
    rows: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    referenced_roles: set[str] = field(default_factory=set)


def chunked(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    chunk: list[SourceRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Ingestor:
    """Streams sources (``FileSource`` or ``DatabaseSource``) into a run's ledger."""

    def __init__(self, run: ImportRun) -> None:
        self.run = run
        self.summary = IngestSummary()
        default = app_settings.DEFAULT_ORGANIZATION
        self.default_organization = str(default["external_id"]) if default else None

    def ingest(self, sources: list[Any]) -> IngestSummary:
        ordered = sorted(sources, key=lambda source: KINDS.index(source.kind))
        for source in ordered:
            if source.kind == Kind.USER:
                self.ensure_default_organization()
            for chunk in chunked(source.rows(), CHUNK):
                self.add(source.kind, chunk)
        details = [source.info.as_dict() for source in ordered]
        digest = hashlib.sha256()
        for detail in details:
            digest.update(f"{detail['kind']}:{detail['checksum']}\n".encode())
        self.run.source_detail = details
        self.run.checksum = digest.hexdigest()
        self.run.options = {
            **self.run.options,
            "referenced_roles": sorted(self.summary.referenced_roles),
        }
        # Leaving the ingest phase says the whole source is in the ledger (runner.ingest_complete).
        self.run.phase = ImportRun.Phase.ROLES
        self.run.save(update_fields=["source_detail", "checksum", "options", "phase"])
        self.run.refresh_counts()
        return self.summary

    def ensure_default_organization(self) -> None:
        """A user row that names no organization goes to DEFAULT_ORGANIZATION: import it too."""
        if not self.default_organization:
            return
        exists = self.run.records.filter(
            kind=Kind.ORGANIZATION, key=self.default_organization
        ).exclude(status=Status.INVALID)
        if exists.exists():
            return
        default = app_settings.DEFAULT_ORGANIZATION
        ImportRecord.objects.create(
            run=self.run,
            kind=Kind.ORGANIZATION,
            location="MIGRATION['DEFAULT_ORGANIZATION']",
            key=self.default_organization,
            external_id=self.default_organization,
            payload={
                "external_id": self.default_organization,
                "display_name": str(default.get("display_name") or self.default_organization),
                "metadata": {},
            },
        )

    # one chunk ----------------------------------------------------------------------------
    def add(self, kind: str, rows: list[SourceRow]) -> None:
        records = [self.validate(kind, row) for row in rows]
        valid = [record for record in records if record.status != Status.INVALID]
        if kind == Kind.USER:
            self.check_user_duplicates(valid)
            self.check_organization_references([r for r in valid if r.status != Status.INVALID])
        else:
            self.check_key_duplicates(kind, valid)
        for record in records:
            self.summary.rows[kind] = self.summary.rows.get(kind, 0) + 1
            if record.status == Status.INVALID:
                self.summary.invalid[kind] = self.summary.invalid.get(kind, 0) + 1
            elif kind == Kind.USER:
                for membership in record.payload["memberships"]:
                    self.summary.referenced_roles.update(membership["roles"])
        ImportRecord.objects.bulk_create(records, batch_size=CHUNK)

    def validate(self, kind: str, row: SourceRow) -> ImportRecord:
        record = ImportRecord(
            run=self.run, kind=kind, row_number=row.number, location=row.location[:300]
        )
        data = row.data or {}
        record.key = identity_hint(kind, data)
        if kind == Kind.USER:
            record.email = readable_email(data.get("email"))
        if kind in (Kind.USER, Kind.ORGANIZATION):
            record.external_id = readable_text(data.get("external_id"), EXTERNAL_ID_MAX)
        if row.error:
            return invalidate(record, row.error, row.error_code or "malformed_row")
        try:
            if kind == Kind.USER:
                payload = VALIDATORS[kind](data, self.default_organization)
            else:
                payload = VALIDATORS[kind](data)
        except RowInvalid as exc:
            return invalidate(record, str(exc), exc.code)
        record.payload = payload
        if kind == Kind.ROLE:
            record.key = payload["name"]
        elif kind == Kind.ORGANIZATION:
            record.key = record.external_id = payload["external_id"]
        else:
            record.email = email_key(payload["email"])
            record.external_id = payload["external_id"]
            record.key = user_key(record.external_id, record.email)
        return record

    def check_key_duplicates(self, kind: str, records: list[ImportRecord]) -> None:
        seen: dict[str, ImportRecord] = {}
        for record in records:
            first = seen.get(record.key)
            if first is not None:
                invalidate(
                    record,
                    f"duplicate {self.key_name(kind)} {record.key!r}: first seen at {first.location}",
                    "duplicate",
                )
            else:
                seen[record.key] = record
        if not seen:
            return
        earlier = dict(
            self.run.records.filter(kind=kind, key__in=list(seen))
            .exclude(status=Status.INVALID)
            .values_list("key", "location")
        )
        for key, location in earlier.items():
            invalidate(
                seen[key],
                f"duplicate {self.key_name(kind)} {key!r}: first seen at {location}",
                "duplicate",
            )

    @staticmethod
    def key_name(kind: str) -> str:
        return "role name" if kind == Kind.ROLE else "external_id"

    def check_user_duplicates(self, records: list[ImportRecord]) -> None:
        emails: dict[str, ImportRecord] = {}
        external_ids: dict[str, ImportRecord] = {}
        for record in records:
            first = emails.get(record.email)
            if first is not None:
                invalidate(
                    record,
                    f"duplicate email {record.email!r}: first seen at {first.location}",
                    "duplicate",
                )
                continue
            if record.external_id:
                first = external_ids.get(record.external_id)
                if first is not None:
                    invalidate(
                        record,
                        f"duplicate external_id {record.external_id!r}: first seen at {first.location}",
                        "duplicate",
                    )
                    continue
                external_ids[record.external_id] = record
            emails[record.email] = record
        if not emails:
            return
        earlier = (
            self.run.records.filter(kind=Kind.USER)
            .exclude(status=Status.INVALID)
            .filter(Q(email__in=list(emails)) | Q(external_id__in=list(external_ids)))
            .values_list("email", "external_id", "location")
        )
        for email, external_id, location in earlier:
            if email in emails and emails[email].status != Status.INVALID:
                invalidate(
                    emails[email],
                    f"duplicate email {email!r}: first seen at {location}",
                    "duplicate",
                )
            if (
                external_id
                and external_id in external_ids
                and external_ids[external_id].status != Status.INVALID
            ):
                invalidate(
                    external_ids[external_id],
                    f"duplicate external_id {external_id!r}: first seen at {location}",
                    "duplicate",
                )

    def check_organization_references(self, records: list[ImportRecord]) -> None:
        wanted = {m["organization"] for record in records for m in record.payload["memberships"]}
        if not wanted:
            return
        known: dict[str, tuple[str, str]] = {}
        for key, status, location in self.run.records.filter(
            kind=Kind.ORGANIZATION, key__in=list(wanted)
        ).values_list("key", "status", "location"):
            if key not in known or status != Status.INVALID:
                known[key] = (status, location)
        for record in records:
            for membership in record.payload["memberships"]:
                organization = membership["organization"]
                found = known.get(organization)
                if found is None:
                    invalidate(
                        record,
                        f"memberships: unknown organization {organization!r} "
                        "(not in the organizations source)",
                        "unknown_organization",
                    )
                    break
                if found[0] == Status.INVALID:
                    invalidate(
                        record,
                        f"memberships: organization {organization!r} was rejected (see {found[1]})",
                        "unknown_organization",
                    )
                    break


EMAIL_KEY_PREFIX = "email:"
ESCAPED_EXTERNAL_ID_PREFIX = "ext:"


def user_key(external_id: str, email: str) -> str:
    """A user's ledger key: its external id, or ``email:<email>`` when it has none.

    The scheme is injective: an external id that itself starts with ``email:`` or ``ext:`` is
    written ``ext:<external id>``, so it never equals a user's email key (external id
    ``email:x@example.com`` and email ``x@example.com`` are two users) nor another external id.
    Every other external id is its own key, as it always was.
    """
    if not external_id:
        return f"{EMAIL_KEY_PREFIX}{email}"
    if external_id.startswith((EMAIL_KEY_PREFIX, ESCAPED_EXTERNAL_ID_PREFIX)):
        return f"{ESCAPED_EXTERNAL_ID_PREFIX}{external_id}"
    return external_id


def identity_hint(kind: str, data: dict[str, Any]) -> str:
    """Best-effort key for a row that may turn out invalid (shown in the admin)."""
    field = {"role": "name", "organization": "external_id", "user": "email"}[kind]
    return readable_text(data.get(field), 520)


def readable_text(value: Any, max_len: int) -> str:
    """A field of a row that may be invalid, as the ledger keeps it for people to find the row
    (``migration_export_failures``, the admin): "" when it is neither a string nor a number, or
    holds characters that are not text (validation names those)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = unicodedata.normalize("NFC", str(value).strip())
    try:
        check_encoding("", text)
    except RowInvalid:
        return ""
    return text[:max_len]


def readable_email(value: Any) -> str:
    """The email of a row that may be invalid: normalised when it is an address, else as
    written (lower case, like every email the ledger keeps)."""
    try:
        return email_key(normalize_email(value))
    except RowInvalid:
        return email_key(readable_text(value, EMAIL_MAX))


def invalidate(record: ImportRecord, reason: str, code: str) -> ImportRecord:
    record.status = Status.INVALID
    record.last_error = reason
    record.error_code = code[:40]
    record.retryable = False
    return record


def describe(sources: list[Any]) -> str:
    parts = [
        f"{source.kind}s={source.path}"
        for source in sorted(sources, key=lambda s: KINDS.index(s.kind))
    ]
    return ", ".join(parts)[:500]


def create_run(
    sources: list[Any],
    *,
    options: dict[str, Any] | None = None,
    dry_run: bool = False,
    created_by: str = "",
) -> ImportRun:
    """A new run with its ledger filled from ``sources`` (validated, nothing sent yet).

    When reading fails (``SourceError``, or anything unexpected) the run is marked failed with
    the reason and stays in the ingest phase, which no resume or retry accepts; the error is
    raised again.
    """
    from django.utils import timezone

    from .sources import SourceError

    run = ImportRun.objects.create(
        source=describe(sources),
        options=dict(options or {}),
        dry_run=dry_run,
        created_by=created_by[:150],
        phase=ImportRun.Phase.INGEST,
    )
    try:
        Ingestor(run).ingest(sources)
    except Exception as exc:
        if isinstance(exc, SourceError):
            message = str(exc)
        else:
            logger.exception("migration: reading the source of run %s failed", run.pk)
            message = f"reading the source failed ({type(exc).__name__}); see the log"
        run.status = ImportRun.Status.FAILED
        run.message = message
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "message", "finished_at"])
        run.refresh_counts()
        raise
    return run
