"""The one place where this project reaches Scalekit: a lazily built, per-process SDK client.

Every call that leaves the process goes through this module: the SDK through ``get_client()``
(built on first use, since the SDK fetches a management token in its constructor, and shared by
all threads of the process), and the few plain HTTPS requests the SDK does not make for us
(JWKS, token endpoint answers, readiness probes) through ``environment_request()``, which only
ever talks https to ``SCALEKIT_AUTH['ENVIRONMENT_URL']`` with the configured trust store.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import requests
from django.core.exceptions import ImproperlyConfigured
from scalekit import ScalekitClient

from .conf import app_settings
from .signals import token_requested

_lock = threading.Lock()
_client: ScalekitClient | None = None


#: The variables the SDK's two transports read their trust store from, and for each, the ones
#: that stand in for it when it is unset (requests falls back to ``CURL_CA_BUNDLE``).
TRUST_VARIABLES = {
    "REQUESTS_CA_BUNDLE": ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",),
}
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"

_trust_lock = threading.Lock()
#: variable -> (its value before ``trust_ca_bundle`` first set it, the value it set).
_trusted: dict[str, tuple[str | None, str]] = {}


def trust_ca_bundle(path: str) -> None:
    """Make both of the SDK's transports trust ``path`` (the emulator's CA) as well.

    The SDK offers no trust store of its own: ``requests`` reads ``REQUESTS_CA_BUNDLE`` on every
    call, and grpc-core reads ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` once, before the first secure
    channel of the process, so this must run before any ``ScalekitClient`` is built, and a
    different CA later in the same process does not reach gRPC. ``SSL_CERT_FILE`` works for
    neither. Both variables are process-wide, so they are pointed at a combined bundle: the
    one they named before (certifi's when unset) plus ``path``; every other HTTPS call of the
    project keeps trusting what it trusted. See ``combined_ca_bundle``.
    """
    extra = _read_bundle(path, "SCALEKIT_AUTH['CA_BUNDLE']")
    with _trust_lock:
        for variable, read_from in TRUST_VARIABLES.items():
            current = next((os.environ[name] for name in read_from if os.environ.get(name)), None)
            earlier = _trusted.get(variable)
            base = earlier[0] if earlier and earlier[1] == current else current
            bundle = combined_ca_bundle(base or certifi.where(), extra, variable=variable)
            os.environ[variable] = bundle
            _trusted[variable] = (base, bundle)


def _read_bundle(path: str, name: str) -> bytes:
    if not os.path.isfile(path):
        raise ImproperlyConfigured(f"{name} points to {path!r}, which is not a file.")
    content = Path(path).read_bytes()
    if PEM_CERTIFICATE not in content:
        raise ImproperlyConfigured(
            f"{name} points to {path!r}, which holds no PEM certificate "
            "('-----BEGIN CERTIFICATE-----')."
        )
    return content


def combined_ca_bundle(base: str, extra: bytes, *, variable: str = "the CA bundle") -> str:
    """The path of a bundle with the certificates of the file ``base`` followed by ``extra``.

    ``base`` itself when it already holds ``extra``. Otherwise the file is written once, named
    by the hash of its content, in a directory of this user's under the system's temporary
    directory that no one else can write (``private_directory``), so every process of the
    project shares it and none can be handed a CA by another user.
    """
    content = _read_bundle(base, variable)
    if extra.strip() in content:
        return base
    combined = content.rstrip(b"\n") + b"\n" + extra.strip() + b"\n"
    digest = hashlib.sha256(combined).hexdigest()[:16]
    target = private_directory() / f"ca-bundle-{digest}.pem"
    if not target.is_file() or target.read_bytes() != combined:
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(combined)
        os.replace(temporary, target)
    return str(target)


def private_directory() -> Path:
    """``<tempdir>/scalekit_auth-<uid>``, created 0700; a fresh private directory instead when
    that one exists but is not a directory of this user's that only they can write."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    directory = Path(tempfile.gettempdir()) / f"scalekit_auth-{uid if uid is not None else 'user'}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError:
        info = None
    if (
        info is not None
        and stat.S_ISDIR(info.st_mode)
        and (uid is None or (info.st_uid == uid and not info.st_mode & 0o022))
    ):
        return directory
    return Path(tempfile.mkdtemp(prefix="scalekit_auth-"))


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


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: causes, contexts, exception arguments (the SDK
    wraps a requests error as ``ScalekitException(error)``) and urllib3's ``reason``."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped += list(current.args)
        todo += [item for item in wrapped if isinstance(item, BaseException)]


def certificate_verification_failure(exc: BaseException) -> str | None:
    """What failed when ``exc`` comes from a TLS certificate verification
    (``CERTIFICATE_VERIFY_FAILED``: an unknown CA, a name the certificate lacks...), else None.

    Found in the wrapped exceptions of the requests transport, or in the text of a gRPC error
    (grpc-core reports ``CERTIFICATE_VERIFY_FAILED`` only in its details).
    """
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or "certificate verify failed"
    for cause in _causes(exc):
        if "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return "certificate verify failed"
    return None


def describe_error(exc: BaseException) -> str:
    """Why a call to Scalekit failed, for logs, auth events and run messages (not for pages).

    A TLS verification failure is named as such, with ``SCALEKIT_AUTH['CA_BUNDLE']``, the
    setting that fixes it; a connection failure names the environment URL; anything else
    only its type. Never the exception's own text, which may quote a server's answer.
    """
    if isinstance(exc, ImproperlyConfigured):
        return str(exc)  # names settings, never their values
    url = app_settings.ENVIRONMENT_URL or "SCALEKIT_AUTH['ENVIRONMENT_URL'] (empty)"
    failure = certificate_verification_failure(exc)
    if failure is not None:
        if app_settings.CA_BUNDLE:
            fix = (
                "SCALEKIT_AUTH['CA_BUNDLE'] does not hold the CA that signed its certificate, or "
                "gRPC kept the roots it read first (restart after fixing it; CA_BUNDLE is "
                f"{app_settings.CA_BUNDLE})"
            )
        else:
            fix = "for the emulator, set SCALEKIT_AUTH['CA_BUNDLE'] to its ca.pem"
        # Short enough for an auth event's reason (255 characters) with a usual URL.
        return (
            f"TLS certificate verification failed (CERTIFICATE_VERIFY_FAILED) for {url}: {fix} "
            f"[{failure}]"
        )
    if any(isinstance(cause, requests.Timeout) for cause in _causes(exc)):
        return f"{url} did not answer in time ({type(exc).__name__})"
    if any(isinstance(cause, requests.ConnectionError) for cause in _causes(exc)):
        return f"could not connect to {url} ({type(exc).__name__})"
    return type(exc).__name__


def describe_client_error(exc: BaseException) -> str:
    """Why ``get_client()`` could not build the SDK client (it fetches a token at once)."""
    if isinstance(exc, ImproperlyConfigured):
        return str(exc)
    cause = describe_error(exc)
    if cause == type(exc).__name__:
        cause = (
            "check SCALEKIT_ENVIRONMENT_URL, the credentials and, for the emulator, "
            "SCALEKIT_AUTH['CA_BUNDLE'] (SCALEKIT_CA_BUNDLE)"
        )
    return f"the Scalekit client could not be built ({type(exc).__name__}): {cause}"
