"""Where the rows to import come from: CSV, JSON and NDJSON files, or this project's database."""

from __future__ import annotations

from pathlib import Path

from .base import KINDS, SourceError, SourceInfo, SourceRow
from .csvfile import CsvSource
from .database import DatabaseSource
from .jsonfile import JsonSource
from .ndjson import NdjsonSource

FORMATS = {"csv": CsvSource, "json": JsonSource, "ndjson": NdjsonSource, "jsonl": NdjsonSource}

__all__ = [
    "KINDS",
    "FORMATS",
    "CsvSource",
    "DatabaseSource",
    "JsonSource",
    "NdjsonSource",
    "SourceError",
    "SourceInfo",
    "SourceRow",
    "open_file_source",
]


def open_file_source(kind: str, path: str | Path, fmt: str | None = None):
    """The source for ``path``; the format comes from ``fmt`` or the file extension."""
    name = str(path)
    fmt = (fmt or Path(name).suffix.lstrip(".")).lower()
    try:
        cls = FORMATS[fmt]
    except KeyError:
        raise SourceError(
            f"{name}: unknown format {fmt!r}; use a .csv, .json or .ndjson file (or --format)."
        ) from None
    return cls(kind, name)
