"""The one place where this project reaches Scalekit: a lazily built, per-process SDK client.

Every call that leaves the process goes through this module: the SDK through ``get_client()``
(built on first use, since the SDK fetches a management token in its constructor, and shared by
all threads of the process), and the few plain HTTPS requests the SDK does not make for us
(JWKS, token endpoint answers, readiness probes) through ``environment_request()``, which only
ever talks https to ``SCALEKIT_AUTH['ENVIRONMENT_URL']`` with the configured trust store.
"""

from __future__ import annotations

import json
import os
import threading
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ImproperlyConfigured
from scalekit import ScalekitClient

from .conf import app_settings
from .signals import token_requested

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


def environment_url() -> str:
    """``SCALEKIT_AUTH['ENVIRONMENT_URL']`` without its trailing slash; only an https URL.

    Raises ``ImproperlyConfigured`` for an empty or non-https URL: client credentials and
    tokens never cross the network in clear.
    """
    url = (app_settings.ENVIRONMENT_URL or "").rstrip("/")
    if not url:
        raise ImproperlyConfigured(
            "SCALEKIT_AUTH['ENVIRONMENT_URL'] is empty: set SCALEKIT_ENVIRONMENT_URL."
        )
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise ImproperlyConfigured(
            f"SCALEKIT_AUTH['ENVIRONMENT_URL'] {url} is not an https URL; Scalekit is only "
            "reached over https (set it to https://<your environment>)."
        )
    return url


def environment_request(
    method: str, path: str, *, data: dict[str, str] | None = None, timeout: float = 5.0
) -> requests.Response:
    """One plain HTTPS request to ``ENVIRONMENT_URL + path``, returned whatever its status.

    Trusts ``SCALEKIT_AUTH['CA_BUNDLE']`` when set (the emulator), the system store otherwise;
    follows no redirect (a ``Location`` elsewhere must not receive a form with a secret).
    ``path`` is absolute on the environment (``"/keys"``), never a URL. Raises
    ``ImproperlyConfigured`` (see ``environment_url``), ``ValueError`` for a bad path, and
    ``requests.RequestException`` for a transport failure.
    """
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"environment_request() takes a path starting with one '/', not {path!r}.")
    return requests.request(
        method,
        environment_url() + path,
        data=data,
        timeout=timeout,
        verify=app_settings.CA_BUNDLE or True,
        allow_redirects=False,
    )


def client_credentials_response(timeout: float = 5.0) -> requests.Response:
    """A fresh ``client_credentials`` request to the token endpoint with the configured id and
    secret, returned whatever its status (a 401 means the credentials are refused).

    Not through the cached SDK client, whose token was fetched once at start-up: a secret
    rotated or revoked since then shows here. The secret is only put in the form body.
    """
    missing = [key for key in ("CLIENT_ID", "CLIENT_SECRET") if not getattr(app_settings, key)]
    if missing:
        raise ImproperlyConfigured(
            "Scalekit is not configured: set "
            + ", ".join(f"SCALEKIT_AUTH['{key}']" for key in missing)
            + " (from the SCALEKIT_* environment variables)."
        )
    return environment_request(
        "POST",
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app_settings.CLIENT_ID,
            "client_secret": app_settings.CLIENT_SECRET,
        },
        timeout=timeout,
    )


def fetch_jwks(timeout: float = 5.0) -> dict:
    """GET the environment's JWKS (``/keys``). Ours, not the SDK's: the SDK caches keys for the
    life of the process, so a key rotation would break every login until a restart."""
    response = environment_request("GET", "/keys", timeout=timeout)
    response.raise_for_status()
    if response.is_redirect:
        raise requests.HTTPError(f"the JWKS answered a {response.status_code} redirect")
    return response.json()


def token_request(form: dict[str, str]) -> dict:
    """POST ``form`` (plus our client credentials) to the token endpoint through the SDK's
    transport, and return the JSON answer without the SDK's own token checks.

    ``authenticate_with_code`` would validate the ID token against the SDK's forever-cached
    JWKS (a bare ``KeyError`` after a key rotation) and without issuer or audience;
    ``scalekit_auth.tokens`` verifies both tokens properly instead. SDK exceptions
    (``ScalekitBadRequestException`` for an ``invalid_grant``, ...) propagate.
    ``signals.token_requested`` is sent first, with the form's ``grant_type``.
    """
    grant_type = form.get("grant_type")
    if not grant_type:
        raise ValueError("token_request() needs a form with a grant_type.")
    sdk = get_client()
    token_requested.send(sender=None, grant_type=grant_type)
    data = {
        **form,
        "client_id": sdk.core_client.client_id,
        "client_secret": sdk.core_client.client_secret,
    }
    response = sdk.core_client.authenticate(data={k: v for k, v in data.items() if v is not None})
    return json.loads(response.content)
