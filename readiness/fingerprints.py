"""Config fingerprints: one short digest per setting a check, a sign-off or a waiver depends on.

A sign-off stores the digest of each setting of its item when it was given; it goes stale when one
of *those* settings changes, not when the item starts watching one more (``readiness_sync``). A
digest covers secrets too (rotating the Scalekit secret must invalidate "credentials match the
production dashboard") but never reveals them: secrets, and dicts that may hold them, are digested
with an HMAC keyed by ``SECRET_KEY``, so a stored digest cannot be checked against guesses without
the key. A digest made with a key now listed in ``SECRET_KEY_FALLBACKS`` still matches, so rotating
``SECRET_KEY`` the way Django recommends does not void sign-offs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from .masking import looks_secret

_ABSENT = "<absent>"
#: Marks a digest made with the HMAC (a secret, or a dict that may hold one).
KEYED_PREFIX = "h:"
_SALT = "readiness.fingerprints"


def read_setting(path: str) -> Any:
    """Read ``"NAME"`` or ``"NAME.KEY"`` (a key of a settings dict) from Django settings."""
    name, _, key = path.partition(".")
    value = getattr(settings, name, _ABSENT)
    if key:
        value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
    return value


def _keyed(path: str, value: Any) -> bool:
    return looks_secret(path) or isinstance(value, dict)


def setting_digest(path: str, *, secret: str | bytes | None = None) -> str:
    """A 16-hex-digit digest of the current value of ``path`` (``h:``-prefixed when keyed)."""
    value = read_setting(path)
    payload = json.dumps([path, value], sort_keys=True, default=repr)
    if _keyed(path, value):
        key = settings.SECRET_KEY if secret is None else secret
        mac = salted_hmac(_SALT, payload, secret=key, algorithm="sha256")
        return KEYED_PREFIX + mac.hexdigest()[:16]
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def digest_matches(path: str, stored: str) -> bool:
    """Whether ``stored`` is the digest of the current value of ``path`` (any signing key)."""
    if not stored.startswith(KEYED_PREFIX):
        return constant_time_compare(stored, setting_digest(path))
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(stored, setting_digest(path, secret=key)) for key in keys)


def setting_digests(paths: Iterable[str]) -> dict[str, str]:
    return {path: setting_digest(path) for path in sorted(set(paths))}


def changed_settings(digests: Mapping[str, str]) -> list[str]:
    """The settings of ``digests`` whose value changed since the digests were taken."""
    return [path for path, stored in sorted(digests.items()) if not digest_matches(path, stored)]


def fingerprint(paths: Iterable[str]) -> str:
    """One 16-hex-digit hash of the digests of ``paths``; empty when there are none."""
    digests = setting_digests(paths)
    if not digests:
        return ""
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]
