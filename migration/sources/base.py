"""What every source yields: rows with their position, read as a stream.

A source never holds more than one row (plus a read buffer) in memory, whatever the file size.
Bytes are decoded as UTF-8 with ``surrogateescape``: an undecodable byte survives as a lone
surrogate (U+DC80-U+DCFF) so validation can name the row, field and byte instead of the whole
file failing.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

KINDS = ("role", "organization", "user")

#: A single row (a CSV record, an NDJSON line, a JSON element) larger than this is refused
#: rather than buffered, so a corrupt file cannot exhaust memory.
MAX_ROW_BYTES = 1024 * 1024


class SourceError(Exception):
    """The source as a whole cannot be read (missing file, wrong header, not a JSON array)."""


@dataclass
class SourceRow:
    """One row of a source: its data, or why it could not even be parsed."""

    number: int
    location: str
    data: dict[str, Any] | None = None
    error: str = ""
    error_code: str = ""


@dataclass
class SourceInfo:
    """What the run records about a source file."""

    kind: str
    path: str
    format: str
    checksum: str = ""
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "format": self.format,
            "checksum": self.checksum,
            "rows": self.rows,
            **self.extra,
        }


class HashingReader(io.RawIOBase):
    """A binary reader that feeds a SHA-256 with every byte it hands out."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        return n

    def close(self) -> None:
        """Ignored: text and buffer wrappers close their stream when dropped; ``finish`` ends it."""

    def finish(self) -> str:
        """Hash what was not read (so the checksum is the whole file's), close, return the hex."""
        while True:
            data = self.raw.read(1 << 16)
            if not data:
                break
            self.sha256.update(data)
        self.raw.close()
        return self.sha256.hexdigest()


class FileSource:
    """Base of the file sources: opens the file, hashes it while reading, counts rows."""

    format = ""

    def __init__(self, kind: str, path: str) -> None:
        if kind not in KINDS:
            raise SourceError(f"Unknown kind {kind!r}; expected one of {', '.join(KINDS)}.")
        self.kind = kind
        self.path = str(path)
        self.info = SourceInfo(kind=kind, path=self.path, format=self.format)

    def open_binary(self) -> HashingReader:
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed by rows()
        except OSError as exc:
            raise SourceError(f"Cannot open {self.path}: {exc.strerror}.") from exc
        return HashingReader(raw)

    def rows(self) -> Iterator[SourceRow]:
        reader = self.open_binary()
        try:
            for row in self.parse(reader):
                self.info.rows += 1
                yield row
        finally:
            self.info.checksum = reader.finish()

    def parse(self, stream: HashingReader) -> Iterator[SourceRow]:  # pragma: no cover
        raise NotImplementedError

    def where(self, number: int, unit: str = "line") -> str:
        return f"{self.path} {unit} {number}"
