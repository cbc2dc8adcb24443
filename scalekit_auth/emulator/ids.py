"""Identifiers shaped like Scalekit's: a prefix and 18 digits (``org_``, ``usr_``, ...)."""

from __future__ import annotations

import itertools
import secrets
import threading
import time

_lock = threading.Lock()
# Digits start from the clock so ids from a restarted, persisted emulator never collide.
_counter = itertools.count(int(time.time() * 1000) * 1000)


def new_id(prefix: str) -> str:
    """``prefix_`` and 18 digits, unique within the process and increasing."""
    with _lock:
        value = next(_counter)
    return f"{prefix}_{value % 10**18:018d}"


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    token = secrets.token_urlsafe(nbytes)
    return f"{prefix}_{token}" if prefix else token
