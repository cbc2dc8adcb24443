"""NDJSON (JSON Lines) sources: one JSON object per line; blank lines are skipped.

A bad line (invalid JSON, nested too deeply to parse, not an object, undecodable bytes) is one
bad row; the next line is
read as usual, which makes NDJSON the most forgiving format for large exports.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

from .base import MAX_ROW_BYTES, FileSource, HashingReader, SourceRow

#: Why a value whose arrays and objects nest deeper than Python's JSON parser can follow (its
#: recursion limit: about a thousand levels) is refused; no real row comes near that.
NESTING_ERROR = "arrays or objects nested too deeply (the parser stops at about 1000 levels)"


class NdjsonSource(FileSource):
    format = "ndjson"

    def parse(self, stream: HashingReader) -> Iterator[SourceRow]:
        binary = io.BufferedReader(stream, buffer_size=1 << 16)
        number = 0
        while True:
            line = binary.readline(MAX_ROW_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_ROW_BYTES and not line.endswith(b"\n"):
                while True:  # skip the rest of the oversized line
                    rest = binary.readline(1 << 16)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield SourceRow(
                    number,
                    self.where(number),
                    error=f"the line is longer than {MAX_ROW_BYTES} bytes",
                    error_code="oversized_row",
                )
                continue
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            text = line.decode("utf-8", errors="surrogateescape").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield SourceRow(
                    number,
                    self.where(number),
                    error=f"invalid JSON: {exc.msg} at column {exc.colno}",
                    error_code="malformed_row",
                )
                continue
            except RecursionError:
                yield SourceRow(
                    number,
                    self.where(number),
                    error=f"invalid JSON: {NESTING_ERROR}",
                    error_code="malformed_row",
                )
                continue
            if not isinstance(data, dict):
                yield SourceRow(
                    number,
                    self.where(number),
                    error=f"expected a JSON object, got {type(data).__name__}",
                    error_code="malformed_row",
                )
                continue
            yield SourceRow(number, self.where(number), data=data)
