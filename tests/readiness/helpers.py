"""Helpers for the readiness tests: run one probe, production-grade settings, probe coverage."""

from __future__ import annotations

import base64
import os
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.test import override_settings

from readiness.registry import ProbeContext, ProbeResult, get_probe
from readiness.runner import execute

#: probe id -> outcomes some test asserts for it (filled at import time by ``covers``).
COVERAGE: dict[str, set[str]] = defaultdict(set)


def covers(probe_id: str, *outcomes: str) -> Callable[[Callable], Callable]:
    """Declare that the decorated test asserts ``outcomes`` for ``probe_id``."""
    get_probe(probe_id)  # fails at import time for a typo

    def decorator(func: Callable) -> Callable:
        COVERAGE[probe_id].update(outcomes)
        return func

    return decorator


def run_probe(
    probe_id: str, *, network: bool = True, ctx: ProbeContext | None = None
) -> ProbeResult:
    """Run one registered probe the way the runner does (errors and waivers included)."""
    return execute(get_probe(probe_id), ctx or ProbeContext(network=network)).result


HOST = "app.example.com"
CLIENT_SECRET = "sks_" + secrets.token_urlsafe(32)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
PROD_ENV = {
    "SCALEKIT_ENVIRONMENT_URL": "https://acme.scalekit.com",
    "SCALEKIT_CLIENT_ID": "skc_58327482062864390",
    "SCALEKIT_CLIENT_SECRET": CLIENT_SECRET,
    "SCALEKIT_WEBHOOK_SECRET": WEBHOOK_SECRET,
}


def production_scalekit(**overrides: Any) -> dict[str, Any]:
    return {
        **settings.SCALEKIT_AUTH,
        "ENVIRONMENT_URL": PROD_ENV["SCALEKIT_ENVIRONMENT_URL"],
        "CLIENT_ID": PROD_ENV["SCALEKIT_CLIENT_ID"],
        "CLIENT_SECRET": CLIENT_SECRET,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CA_BUNDLE": "",
        "REDIRECT_URI": f"https://{HOST}/auth/callback/",
        "POST_LOGOUT_REDIRECT_URI": f"https://{HOST}/",
        "SCOPES": ["openid", "profile", "email", "offline_access"],
        "TOKEN_LEEWAY_SECONDS": 10,
        "ROLLOUT_PERCENTAGE": 100,
        **overrides,
    }


def production_settings(**overrides: Any) -> dict[str, Any]:
    """Settings a production deployment would pass every settings and deploy check with."""
    values = {
        "DEBUG": False,
        "SECRET_KEY": "prod-" + secrets.token_urlsafe(60),
        "SECRET_KEY_FALLBACKS": [],
        "ALLOWED_HOSTS": [HOST],
        "CSRF_TRUSTED_ORIGINS": [f"https://{HOST}"],
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_AGE": 43200,
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "SECURE_CSP": {"default-src": ["'self'"]},
        "ADMINS": [("Ops", "ops@example.com")],
        "SCALEKIT_AUTH": production_scalekit(),
        "READINESS": {"HEALTH_URL_NAME": "admin:index"},
    }
    values.update(overrides)
    return values


@contextmanager
def production(env: dict[str, str | None] | None = None, **overrides: Any) -> Iterator[None]:
    """Production settings with the Scalekit credentials exported in the environment.

    ``env`` changes the exported variables (``None`` unsets one). Every variable touched is put
    back on exit, so use this rather than ``monkeypatch.setenv`` for the ``SCALEKIT_*`` names.
    """
    exported = {**PROD_ENV, **(env or {})}
    saved = {name: os.environ.get(name) for name in exported}
    for name, value in exported.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        with override_settings(**production_settings(**overrides)):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
