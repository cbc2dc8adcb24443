"""Showing configuration values in reports without showing secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings

_SECRET_PREFIX_RE = re.compile(r"^([a-z]{2,8}_)")
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY", "DSN", "CREDENTIAL")


def mask_secret(value: Any) -> str:
    """Describe a secret without revealing any of it: set or not, its length and a known prefix."""
    if value in (None, ""):
        return "<empty>"
    text = str(value)
    match = _SECRET_PREFIX_RE.match(text)
    prefix = match.group(1) if match else ""
    return f"{prefix}*** ({len(text)} characters)"


def mask_identifier(value: Any, keep: int = 4) -> str:
    """Show the start of an identifier that is not secret but need not be printed whole."""
    if value in (None, ""):
        return "<empty>"
    text = str(value)
    if len(text) <= keep * 2:
        return text[:keep] + "…"
    return f"{text[: keep + 4]}…{text[-keep:]}"


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS) and "KEY_PREFIX" not in upper


def mask_setting(name: str, value: Any) -> Any:
    """Mask ``value`` when the setting's name says it holds a secret; return it unchanged otherwise."""
    if looks_secret(name):
        return mask_secret(value)
    return value


def _secret_values(value: Any, name: str, depth: int = 0) -> Iterator[str]:
    """The strings a setting holds under a secret-looking name: its own (``SECRET_KEY``,
    ``SECRET_KEY_FALLBACKS``) or a key's (``SCALEKIT_AUTH['CLIENT_SECRET']``, a database
    ``PASSWORD``), three levels deep."""
    if isinstance(value, str):
        if looks_secret(name) and len(value) >= 6:
            yield value
    elif depth >= 3:
        return
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _secret_values(inner, name if looks_secret(name) else str(key), depth + 1)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _secret_values(inner, name, depth + 1)


def mask_secrets_in(text: str) -> str:
    """``text`` with every secret value of the settings in it masked (free text, such as an
    exception message, can quote one: a DSN, a header)."""
    secrets_in_settings = {
        secret
        for name in dir(settings)
        if name.isupper()
        for secret in _secret_values(getattr(settings, name, None), name)
    }
    for secret in sorted(secrets_in_settings, key=len, reverse=True):
        text = text.replace(secret, mask_secret(secret))
    return text
