"""Showing configuration values in reports without showing secrets."""

from __future__ import annotations

import re
from typing import Any

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
