"""Plumbing shared by the directory's stores (``directory.py``, ``roles.py``): list pages with
opaque keyset tokens over sorted id lists, message copies, timestamps and queued events."""

from __future__ import annotations

import base64
import binascii
import bisect
import time
from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from .errors import FieldViolation, invalid_argument

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


@dataclass
class Page:
    """One page of a list, with opaque tokens (empty at either end) and the list's total size."""

    items: list
    next_page_token: str
    prev_page_token: str
    total_size: int


# An event waiting for the lock to be released: (type, object type, organization id, payload),
# the payload a message or a dict of messages, already copied.
Pending = tuple[str, str, str, Any]


def timestamp_now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


def encode_token(list_name: str, direction: str, anchor: str) -> str:
    raw = f"{list_name}|{direction}|{anchor}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str, list_name: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        name, direction, anchor = raw.split("|", 2)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name, direction, anchor = "", "", ""
    if name != list_name or direction not in ("n", "p") or not anchor:
        raise invalid_argument(
            f'page_token "{token}" is not a token of this list; pass the next_page_token or '
            "prev_page_token of a previous response unchanged",
            [FieldViolation("page_token", "invalid page token", "page_token")],
        )
    return direction, anchor


def page_ids(ids_sorted: list[str], list_name: str, page_size: int, token: str) -> tuple:
    """Keyset pagination over a sorted id list: O(log n + page size) per page.

    [unknown] Scalekit documents page sizes of 10-100; 0 gives the default here, larger values
    are capped at 100 and smaller ones honoured.
    """
    size = DEFAULT_PAGE_SIZE if page_size <= 0 else min(page_size, MAX_PAGE_SIZE)
    total = len(ids_sorted)
    if token:
        direction, anchor = decode_token(token, list_name)
    else:
        direction, anchor = "n", ""
    if direction == "n":
        start = bisect.bisect_right(ids_sorted, anchor) if anchor else 0
        end = min(start + size, total)
    else:
        end = bisect.bisect_left(ids_sorted, anchor)
        start = max(0, end - size)
    page = ids_sorted[start:end]
    next_token = encode_token(list_name, "n", page[-1]) if page and end < total else ""
    prev_token = encode_token(list_name, "p", page[0]) if page and start > 0 else ""
    return page, next_token, prev_token, total


def insert_sorted(ids_sorted: list[str], item: str) -> None:
    if not ids_sorted or item > ids_sorted[-1]:
        ids_sorted.append(item)
        return
    index = bisect.bisect_left(ids_sorted, item)
    if index == len(ids_sorted) or ids_sorted[index] != item:
        ids_sorted.insert(index, item)


def remove_sorted(ids_sorted: list[str], item: str) -> None:
    index = bisect.bisect_left(ids_sorted, item)
    if index < len(ids_sorted) and ids_sorted[index] == item:
        del ids_sorted[index]


def copy_message(message: Message) -> Any:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
