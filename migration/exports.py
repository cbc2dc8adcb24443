"""The rows that did not make it, as CSV: what to fix and where."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO

from .models import ImportRecord, ImportRun

FAILURE_COLUMNS = [
    "run",
    "kind",
    "row_number",
    "location",
    "key",
    "email",
    "external_id",
    "status",
    "error_code",
    "reason",
    "attempts",
    "retryable",
]


def cell(value: object) -> object:
    """Neutralise spreadsheet formulas: imported text must not run when the CSV is opened."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def failed_records(runs: Iterable[ImportRun]) -> Iterable[ImportRecord]:
    for run in runs:
        queryset = run.records.filter(
            status__in=[ImportRecord.Status.FAILED, ImportRecord.Status.INVALID]
        ).order_by("kind", "row_number", "id")
        yield from queryset.iterator(chunk_size=2000)


def _values(record: ImportRecord) -> list[object]:
    return [
        record.run_id,
        record.kind,
        record.row_number or "",
        record.location,
        record.key,
        record.email,
        record.external_id,
        record.status,
        record.error_code,
        record.last_error,
        record.attempts,
        "yes" if record.retryable else "no",
    ]


def failure_rows(runs: Iterable[ImportRun]) -> Iterator[dict[str, object]]:
    """The failed and invalid rows as dicts (for JSON: values as stored, nothing neutralised)."""
    for record in failed_records(runs):
        row = dict(zip(FAILURE_COLUMNS, _values(record), strict=True))
        row["row_number"] = record.row_number
        row["retryable"] = record.retryable
        yield row


def write_failures(out: IO[str], runs: Iterable[ImportRun]) -> int:
    writer = csv.writer(out)
    writer.writerow(FAILURE_COLUMNS)
    count = 0
    for record in failed_records(runs):
        writer.writerow(cell(value) for value in _values(record))
        count += 1
    return count
