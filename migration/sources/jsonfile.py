"""JSON sources: a top-level array of objects, read incrementally.

The file is decoded in 64 KiB chunks and each element is parsed with
``json.JSONDecoder.raw_decode`` as soon as it is complete in the buffer; consumed text is dropped,
so memory holds one chunk plus one element whatever the file size. An element that is not an
object is one bad row. A JSON syntax error, or an element nested too deeply to parse, ends the
reading of that file (the elements before it still go through): after one there is no reliable
way to find where the next element starts. Use NDJSON to isolate every row.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator

from .base import MAX_ROW_BYTES, FileSource, HashingReader, SourceError, SourceRow
from .ndjson import NESTING_ERROR

CHUNK = 1 << 16
WHITESPACE = " \t\n\r"


class JsonSource(FileSource):
    format = "json"

    def parse(self, stream: HashingReader) -> Iterator[SourceRow]:
        yield from JsonArrayReader(stream, self).elements()


class JsonArrayReader:
    def __init__(self, stream: HashingReader, source: JsonSource) -> None:
        self.stream = stream
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self.json = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # newlines in text already dropped from the buffer

    def fill(self) -> bool:
        """Drop consumed text and append one more chunk; False at end of file."""
        if self.eof:
            return False
        data = self.stream.read(CHUNK)
        text = self.decoder.decode(data or b"", final=not data)
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        if not data:
            self.eof = True
        return bool(data) or bool(text)

    def skip_whitespace(self) -> str:
        """Advance past whitespace; return the next character, or "" at end of file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def line(self, pos: int | None = None) -> int:
        return self.lines_before + self.buf.count("\n", 0, self.pos if pos is None else pos) + 1

    def elements(self) -> Iterator[SourceRow]:
        path = self.source.path
        first = self.skip_whitespace()
        if first == "":
            return
        if first != "[":
            raise SourceError(
                f"{path}: expected a JSON array of objects ('[' at line {self.line()})."
            )
        self.pos += 1
        number = 0
        while True:
            char = self.skip_whitespace()
            if char == "]":
                self.pos += 1
                if self.skip_whitespace() != "":
                    number += 1
                    yield self.error(number, "unexpected data after the closing ']'")
                return
            if number:
                if char != ",":
                    number += 1
                    yield self.error(
                        number,
                        f"expected ',' or ']' at line {self.line()}, found {char!r}"
                        if char
                        else "the file ends inside the array (missing ']')",
                    )
                    return
                self.pos += 1
                char = self.skip_whitespace()
            if char == "":
                number += 1
                yield self.error(number, "the file ends inside the array (missing ']')")
                return
            number += 1
            value, error = self.decode_one()
            if error:
                yield self.error(number, error)
                return
            if not isinstance(value, dict):
                yield SourceRow(
                    number,
                    self.where(number),
                    error=f"expected a JSON object, got {type(value).__name__}",
                    error_code="malformed_row",
                )
                continue
            yield SourceRow(number, self.where(number), data=value)

    def decode_one(self) -> tuple[object, str]:
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except RecursionError:
                # Where the element ends is unknown, as after a syntax error.
                return None, f"invalid JSON: an element has {NESTING_ERROR}"
            except json.JSONDecodeError as exc:
                if self.eof or len(self.buf) - self.pos > MAX_ROW_BYTES:
                    if not self.eof:
                        return None, f"an element is larger than {MAX_ROW_BYTES} bytes or malformed"
                    return None, f"invalid JSON: {exc.msg} at line {self.line(exc.pos)}"
                self.fill()
                continue
            # A number or literal that ends exactly at the buffer end may continue in the
            # next chunk; objects end with "}" and are complete.
            if end == len(self.buf) and not self.eof and not isinstance(value, dict | list | str):
                self.fill()
                continue
            self.pos = end
            return value, ""

    def where(self, number: int) -> str:
        return self.source.where(number, "element")

    def error(self, number: int, message: str) -> SourceRow:
        return SourceRow(
            number,
            self.where(number),
            error=f"{message}; the rest of the file was not read",
            error_code="malformed_file",
        )
