"""The one place where this project reaches Scalekit: a lazily built, per-process SDK client.

Every call that leaves the process goes through ``get_client()``. The client is built on first
use (the SDK fetches a management token in its constructor, so building it is a network call) and
shared by all threads of the process.
"""

from __future__ import annotations

import json
import os
import threading

import requests
from django.core.exceptions import ImproperlyConfigured
from scalekit import ScalekitClient

from .conf import app_settings

_lock = threading.Lock()
_client: ScalekitClient | None = None


def trust_ca_bundle(path: str) -> None:
    """Make both of the SDK's transports trust ``path`` (the emulator's CA).

    ``requests`` reads ``REQUESTS_CA_BUNDLE`` on every call; grpc-core reads
    ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` once, before the first secure channel of the process,
    so this must run before any ``ScalekitClient`` is built. ``SSL_CERT_FILE`` works for neither.
    """
    if not os.path.isfile(path):
        raise ImproperlyConfigured(
            f"SCALEKIT_AUTH['CA_BUNDLE'] points to {path!r}, which is not a file."
        )
    os.environ["REQUESTS_CA_BUNDLE"] = path
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = path


def build_client() -> ScalekitClient:
    """Build a new client from the app settings (a network call: the SDK fetches a token)."""
    missing = [
        key
        for key in ("ENVIRONMENT_URL", "CLIENT_ID", "CLIENT_SECRET")
        if not getattr(app_settings, key)
    ]
    if missing:
        raise ImproperlyConfigured(
            "Scalekit is not configured: set "
            + ", ".join(f"SCALEKIT_AUTH['{key}']" for key in missing)
            + " (from the SCALEKIT_* environment variables)."
        )
    if app_settings.CA_BUNDLE:
        trust_ca_bundle(app_settings.CA_BUNDLE)
    return ScalekitClient(
        app_settings.ENVIRONMENT_URL.rstrip("/"), app_settings.CLIENT_ID, app_settings.CLIENT_SECRET
    )


def get_client() -> ScalekitClient:
    """Return the process-wide client, building it on first use."""
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = build_client()
            client = _client
    return client


def reset_client() -> None:
    """Forget the process-wide client; the next ``get_client()`` builds a new one."""
    global _client
    with _lock:
        _client = None


def fetch_jwks(timeout: float = 5.0) -> dict:
    """GET the environment's JWKS (``/keys``). Ours, not the SDK's: the SDK caches keys for the
    life of the process, so a key rotation would break every login until a restart."""
    url = app_settings.ENVIRONMENT_URL.rstrip("/") + "/keys"
    verify: str | bool = app_settings.CA_BUNDLE or True
    response = requests.get(url, timeout=timeout, verify=verify)
    response.raise_for_status()
    return response.json()


def token_request(form: dict[str, str]) -> dict:
    """POST ``form`` (plus our client credentials) to the token endpoint through the SDK's
    transport, and return the JSON answer without the SDK's own token checks.

    ``authenticate_with_code`` would validate the ID token against the SDK's forever-cached
    JWKS (a bare ``KeyError`` after a key rotation) and without issuer or audience;
    ``scalekit_auth.tokens`` verifies both tokens properly instead. SDK exceptions
    (``ScalekitBadRequestException`` for an ``invalid_grant``, ...) propagate.
    """
    sdk = get_client()
    data = {
        **form,
        "client_id": sdk.core_client.client_id,
        "client_secret": sdk.core_client.client_secret,
    }
    response = sdk.core_client.authenticate(data={k: v for k, v in data.items() if v is not None})
    return json.loads(response.content)
