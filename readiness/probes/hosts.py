"""Small predicates about hosts and URLs shared by the probes."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# Multi-label public suffixes common enough to matter for an ALLOWED_HOSTS catch-all; any
# single-label suffix (".com") is caught without a list.
PUBLIC_SUFFIXES = frozenset(
    {
        "co.uk",
        "org.uk",
        "ac.uk",
        "com.au",
        "net.au",
        "co.jp",
        "co.nz",
        "co.in",
        "com.br",
        "github.io",
        "herokuapp.com",
        "appspot.com",
        "azurewebsites.net",
        "cloudfront.net",
        "vercel.app",
        "netlify.app",
        "onrender.com",
        "fly.dev",
        "pages.dev",
        "web.app",
    }
)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_local(host: str) -> bool:
    """localhost, *.localhost, loopback or unspecified addresses."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def hostname(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def is_public_suffix_catch_all(pattern: str) -> bool:
    """True for ALLOWED_HOSTS entries like ".com" or ".co.uk" that match a whole public suffix."""
    if not pattern.startswith("."):
        return False
    rest = pattern[1:].lower().rstrip(".")
    return "." not in rest or rest in PUBLIC_SUFFIXES
