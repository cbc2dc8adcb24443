"""Config fingerprints: a short hash of the settings a check or sign-off depends on.

A sign-off records the fingerprint of its item's settings; when the settings change later the
sign-off is stale and must be given again. The hash covers secrets too (rotating the Scalekit
secret must invalidate "credentials match the production dashboard") but never stores them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings

_ABSENT = "<absent>"


def read_setting(path: str) -> Any:
    """Read ``"NAME"`` or ``"NAME.KEY"`` (a key of a settings dict) from Django settings."""
    name, _, key = path.partition(".")
    value = getattr(settings, name, _ABSENT)
    if key:
        value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
    return value


def fingerprint(paths: Iterable[str]) -> str:
    """A 16-hex-digit hash of the values of ``paths``; empty when there are none."""
    paths = sorted(set(paths))
    if not paths:
        return ""
    payload = json.dumps({path: read_setting(path) for path in paths}, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
