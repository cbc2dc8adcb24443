"""Test helpers for projects that use the emulator: start one for a test session and point
``scalekit_auth`` at it.

    # conftest.py
    from scalekit_auth.emulator.testing import emulator_settings, start_emulator

    @pytest.fixture(scope="session")
    def emulator():
        with start_emulator() as running:
            yield running
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .server import Emulator
from .tls import process_certificates

# The variables trust() sets: requests reads the first on every call, grpc-core the second once.
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "NO_PROXY")

# The CA the first trust() of this process gave grpc-core, which keeps it for the process's life.
_grpc_ca: bytes | None = None


def trust(emulator: Emulator) -> None:
    """Make this process's SDK trust the emulator's CA (before the first ``ScalekitClient``).

    Raises ``RuntimeError`` when this process already trusts another emulator CA: grpc-core
    reads its roots once per process, so the SDK's gRPC calls to this emulator would fail.
    Emulators started without ``state_dir`` share one CA per process and never hit this.
    """
    global _grpc_ca
    ca = emulator.ca_path.read_bytes()
    if _grpc_ca is not None and ca != _grpc_ca:
        raise RuntimeError(
            f"this process already trusts another emulator CA, and grpc-core reads its roots "
            f"(GRPC_DEFAULT_SSL_ROOTS_FILE_PATH) once per process: the SDK could not reach the "
            f"emulator with state_dir {emulator.state_dir}. Start it without state_dir, copy "
            f"ca.pem, ca.key, server.pem and server.key from {emulator_ca_dir()} into its "
            f"state_dir first, or run it in its own process."
        )
    _grpc_ca = ca
    os.environ["REQUESTS_CA_BUNDLE"] = str(emulator.ca_path)
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(emulator.ca_path)
    os.environ.setdefault("NO_PROXY", "localhost,127.0.0.1")


def emulator_ca_dir() -> Path:
    """The certificate directory this process's emulators without ``state_dir`` share."""
    return process_certificates().ca_path.parent


@contextlib.contextmanager
def start_emulator(**options: Any) -> Iterator[Emulator]:
    """A running emulator on a free port, trusted by this process, stopped on exit.

    Can be used any number of times in a process. On exit the trust variables get back their
    earlier values (grpc-core keeps the roots it read; without ``state_dir`` they stay valid).
    """
    options.setdefault("port", 0)
    saved = {name: os.environ.get(name) for name in TRUST_VARIABLES}
    emulator = Emulator(**options).start()
    try:
        trust(emulator)
        yield emulator
    finally:
        emulator.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def emulator_settings(emulator: Emulator, **extra: Any) -> dict[str, Any]:
    """A ``SCALEKIT_AUTH`` settings dict pointing at ``emulator``."""
    return {
        "ENVIRONMENT_URL": emulator.url,
        "CLIENT_ID": emulator.client_id,
        "CLIENT_SECRET": emulator.client_secret,
        "CA_BUNDLE": str(emulator.ca_path),
        **extra,
    }


def hosted_login(
    authorize_url: str, email: str, *, ca_path: str | os.PathLike, session: Any = None
) -> str:
    """Go through the emulator's hosted login page as a browser would, without a browser.

    GETs ``authorize_url``; when the page shows the sign-in form, posts ``email`` to it. Returns
    the ``Location`` the emulator redirects to (the app's callback with ``code`` and ``state``,
    or with ``error``). Raises ``AssertionError`` with the page text when there is no redirect.
    Pass a ``requests.Session`` to keep the emulator's session cookie between logins.
    """
    import html
    import re

    import requests

    browser = session or requests.Session()
    verify = str(ca_path)  # per request: REQUESTS_CA_BUNDLE would override Session.verify
    page = browser.get(authorize_url, allow_redirects=False, timeout=10, verify=verify)
    if page.status_code == 302:
        return page.headers["location"]
    if page.status_code != 200 or "<form" not in page.text:
        raise AssertionError(
            f"no login form at {authorize_url}: {page.status_code} {page.text[:500]}"
        )
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text
        )
    }
    fields["email"] = email
    action = authorize_url.split("/oauth/authorize", 1)[0] + "/oauth/authorize"
    answer = browser.post(action, data=fields, allow_redirects=False, timeout=10, verify=verify)
    if answer.status_code != 302:
        error = re.search(r'role="alert">([^<]*)<', answer.text)
        raise AssertionError(
            f"login of {email} failed: {html.unescape(error.group(1)) if error else answer.text[:500]}"
        )
    return answer.headers["location"]
