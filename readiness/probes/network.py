"""Kind N: short network probes of Scalekit and of the public site. Never run as system checks.

Each request has a timeout of ``READINESS['NETWORK_TIMEOUT']`` seconds (5 at most). Every request
to Scalekit goes through ``scalekit_auth.client`` (``environment_request`` and
``client_credentials_response``): https only, the trust store of ``SCALEKIT_AUTH['CA_BUNDLE']``
when set (the emulator), no redirects. The two public-site probes (http-to-https redirect, HSTS)
request the project's own ``READINESS['PUBLIC_URL']``, not Scalekit, so they use ``requests``
directly with the system trust store. No token or secret is ever put in a result: only key ids,
lifetimes and latencies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from django.core.exceptions import ImproperlyConfigured

from scalekit_auth import client as scalekit

from .. import contract
from ..conf import app_settings
from ..registry import (
    NETWORK,
    ProbeContext,
    ProbeResult,
    failed,
    passed,
    probe,
    skipped,
    warned,
    worst,
)

HSTS_YEAR = 31536000


def timeout() -> float:
    return max(0.1, min(float(app_settings.NETWORK_TIMEOUT), 5.0))


def env_url() -> str:
    return (contract.scalekit_setting("ENVIRONMENT_URL") or "").rstrip("/")


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    """Run ``call``; returns its response and its latency in ms."""
    started = time.perf_counter()
    response = call()
    return response, round((time.perf_counter() - started) * 1000, 1)


def fetch_public(url: str) -> tuple[requests.Response, float]:
    """GET a page of the public site (not Scalekit) with the probe timeout, no redirects."""
    return timed(lambda: requests.get(url, timeout=timeout(), verify=True, allow_redirects=False))


def fetch_scalekit(path: str) -> tuple[requests.Response, float]:
    """GET ``path`` on the Scalekit environment through ``scalekit_auth.client``."""
    return timed(lambda: scalekit.environment_request("GET", path, timeout=timeout()))


def environment_path(url: str) -> str | None:
    """The path (and query) of ``url`` when it is on the environment's own https origin."""
    parts, base = urlsplit(url), urlsplit(env_url())
    if (parts.scheme, parts.netloc) != ("https", base.netloc) or not parts.path.startswith("/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _unreachable(what: str, url: str, exc: requests.RequestException) -> ProbeResult:
    reason = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError):
        reason = "TLS certificate not trusted"
    elif isinstance(exc, requests.exceptions.Timeout):
        reason = f"no answer within {timeout():g} s"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        reason = "connection failed"
    return failed(f"{what} at {url} is unreachable: {reason}.")


def discovery(ctx: ProbeContext) -> tuple[dict[str, Any] | None, ProbeResult]:
    def compute() -> tuple[dict[str, Any] | None, ProbeResult]:
        base = env_url()
        if not base:
            return None, failed("SCALEKIT_AUTH['ENVIRONMENT_URL'] is empty; nothing to reach.")
        url = f"{base}/.well-known/openid-configuration"
        try:
            response, latency = fetch_scalekit("/.well-known/openid-configuration")
        except ImproperlyConfigured as exc:
            return None, failed(str(exc))
        except requests.RequestException as exc:
            return None, _unreachable("OIDC discovery", url, exc)
        evidence = {"url": url, "status": response.status_code, "latency_ms": latency}
        if response.status_code != 200:
            return None, failed(
                f"OIDC discovery answered {response.status_code}.", evidence=evidence
            )
        try:
            document = response.json()
        except ValueError:
            return None, failed("OIDC discovery did not answer JSON.", evidence=evidence)
        return document, passed("", evidence=evidence)

    return ctx.cached("discovery", compute)


@probe(
    "readiness.E054",
    item="N01",
    title="OIDC discovery reachable",
    kind=NETWORK,
    reads=("SCALEKIT_AUTH.ENVIRONMENT_URL",),
)
def discovery_reachable(ctx: ProbeContext) -> ProbeResult:
    document, fetched = discovery(ctx)
    if document is None:
        return fetched
    evidence = dict(fetched.evidence)
    base, host = env_url(), urlsplit(env_url()).netloc
    findings = []
    issuer = str(document.get("issuer", ""))
    evidence["issuer"] = issuer
    if issuer.rstrip("/") != base:
        findings.append(
            failed(f"the issuer {issuer or '(none)'} differs from the environment URL {base}")
        )
    for field in ("jwks_uri", "end_session_endpoint", "token_endpoint", "authorization_endpoint"):
        value = document.get(field)
        if value is None:
            if field == "jwks_uri":
                findings.append(failed("the discovery document has no jwks_uri"))
            continue
        parts = urlsplit(str(value))
        if parts.scheme != "https" or parts.netloc != host:
            findings.append(failed(f"{field} {value} is not https on {host}"))
    return worst(
        findings,
        f"Discovery answered in {evidence['latency_ms']} ms; issuer matches.",
        evidence=evidence,
    )


def jwks(ctx: ProbeContext) -> tuple[list[dict[str, Any]] | None, ProbeResult]:
    def compute() -> tuple[list[dict[str, Any]] | None, ProbeResult]:
        document, _ = discovery(ctx)
        base = env_url()
        if not base:
            return None, failed("SCALEKIT_AUTH['ENVIRONMENT_URL'] is empty; nothing to reach.")
        published = str((document or {}).get("jwks_uri") or "")
        path = environment_path(published) or "/keys"
        url = base + path
        try:
            response, latency = fetch_scalekit(path)
        except ImproperlyConfigured as exc:
            return None, failed(str(exc))
        except requests.RequestException as exc:
            return None, _unreachable("The JWKS", url, exc)
        evidence: dict[str, Any] = {
            "url": url,
            "status": response.status_code,
            "latency_ms": latency,
        }
        if published and published != url:
            evidence["published_jwks_uri"] = published
        if response.status_code != 200:
            return None, failed(f"The JWKS answered {response.status_code}.", evidence=evidence)
        try:
            keys = response.json().get("keys")
        except (ValueError, AttributeError):
            return None, failed("The JWKS is not a JSON object.", evidence=evidence)
        if not isinstance(keys, list):
            return None, failed("The JWKS has no keys list.", evidence=evidence)
        return keys, passed("", evidence=evidence)

    return ctx.cached("jwks", compute)


@probe(
    "readiness.E055",
    item="N02",
    title="JWKS reachable and usable",
    kind=NETWORK,
    reads=("SCALEKIT_AUTH.ENVIRONMENT_URL",),
)
def jwks_usable(ctx: ProbeContext) -> ProbeResult:
    keys, fetched = jwks(ctx)
    if keys is None:
        return fetched
    evidence = dict(fetched.evidence)
    evidence["kids"] = [str(k.get("kid", "")) for k in keys if isinstance(k, dict)]
    if not keys:
        return failed("The JWKS has no keys: no token can be verified.", evidence=evidence)
    findings = []
    kids = evidence["kids"]
    for index, key in enumerate(keys):
        if not isinstance(key, dict) or not key.get("kid"):
            findings.append(failed(f"key #{index + 1} has no kid"))
            continue
        if key.get("kty") != "RSA":
            findings.append(failed(f"key {key['kid']} is {key.get('kty')!r}, not RSA"))
        if key.get("alg") not in (None, "RS256"):
            findings.append(failed(f"key {key['kid']} is for {key['alg']}, not RS256"))
        try:
            jwt.PyJWK.from_dict(key)
        except jwt.PyJWTError:
            findings.append(failed(f"key {key['kid']} cannot be loaded"))
    if len(set(kids)) != len(kids):
        findings.append(failed("two keys share a kid"))
    return worst(
        findings, f"{len(keys)} RS256 key(s) published ({', '.join(kids)}).", evidence=evidence
    )


@probe(
    "readiness.E056",
    item="N03",
    title="Token endpoint accepts the configured credentials",
    kind=NETWORK,
    reads=(
        "SCALEKIT_AUTH.ENVIRONMENT_URL",
        "SCALEKIT_AUTH.CLIENT_ID",
        "SCALEKIT_AUTH.CLIENT_SECRET",
    ),
)
def token_endpoint(ctx: ProbeContext) -> ProbeResult:
    base = env_url()
    client_id = contract.scalekit_setting("CLIENT_ID") or ""
    client_secret = contract.scalekit_setting("CLIENT_SECRET") or ""
    if not (base and client_id and client_secret):
        return failed("The environment URL, client id or secret is empty.")
    if urlsplit(base).scheme != "https":
        return failed(
            f"The environment URL {base} is not https; the client secret is not sent over it.",
            hint="Set SCALEKIT_AUTH['ENVIRONMENT_URL'] to the https URL of the environment.",
        )
    url = f"{base}/oauth/token"
    try:
        response, latency = timed(lambda: scalekit.client_credentials_response(timeout()))
    except ImproperlyConfigured as exc:
        return failed(str(exc))
    except requests.RequestException as exc:
        return _unreachable("The token endpoint", url, exc)
    evidence: dict[str, Any] = {"url": url, "status": response.status_code, "latency_ms": latency}
    if response.status_code in (400, 401, 403):
        return failed(
            f"The token endpoint refused the configured client id and secret "
            f"({response.status_code}).",
            evidence=evidence,
            hint="Copy the client id and secret of this environment from the dashboard.",
        )
    if response.status_code != 200:
        return failed(f"The token endpoint answered {response.status_code}.", evidence=evidence)
    try:
        token = response.json()["access_token"]
        header = jwt.get_unverified_header(token)
    except (ValueError, KeyError, TypeError, jwt.PyJWTError):
        return failed("The token endpoint did not return a JWT access token.", evidence=evidence)
    evidence["kid"] = header.get("kid", "")
    evidence["alg"] = header.get("alg", "")
    evidence["expires_in"] = response.json().get("expires_in")
    keys, fetched = jwks(ctx)
    if keys is None:
        return failed(
            "A token was issued but the JWKS to verify it is unreachable: " + fetched.message,
            evidence=evidence,
        )
    match = next(
        (k for k in keys if isinstance(k, dict) and k.get("kid") == header.get("kid")), None
    )
    if match is None:
        return failed(
            f"The token's kid {header.get('kid')!r} is not in the JWKS.", evidence=evidence
        )
    try:
        jwt.decode(
            token,
            jwt.PyJWK.from_dict(match).key,
            algorithms=["RS256"],
            options={"verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        return failed(
            f"The token does not verify with key {match['kid']}: {type(exc).__name__}.",
            evidence=evidence,
        )
    return passed(
        f"A token was issued in {latency} ms and verifies with key {match['kid']}.",
        evidence=evidence,
    )


@probe(
    "readiness.E057",
    item="A04",
    title="http:// redirects to https://",
    kind=NETWORK,
    reads=("READINESS.PUBLIC_URL",),
)
def http_redirects_to_https(ctx: ProbeContext) -> ProbeResult:
    public = app_settings.PUBLIC_URL
    if not public:
        return skipped("READINESS['PUBLIC_URL'] is not set; the public site is not probed.")
    public_host = urlsplit(public).hostname or ""
    url = "http://" + urlsplit(public).netloc + "/"
    hops = []
    for _ in range(2):
        try:
            response, latency = fetch_public(url)
        except requests.RequestException as exc:
            return _unreachable("The public site", url, exc)
        hops.append({"url": url, "status": response.status_code, "latency_ms": latency})
        location = response.headers.get("Location", "")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return failed(
                f"{url} answered {response.status_code} without redirecting to https.",
                evidence={"hops": hops},
            )
        target_host = urlsplit(location).hostname or public_host
        if target_host != public_host:
            return failed(
                f"{url} redirects to {location}, off the public host {public_host}.",
                evidence={"hops": hops, "location": location},
                hint="Redirect http:// to https:// on the same host (SECURE_SSL_HOST, or the "
                "proxy's redirect rule).",
            )
        if location.startswith("https://"):
            if response.status_code in (301, 308):
                return passed(
                    f"http:// redirects permanently to {location}.", evidence={"hops": hops}
                )
            return warned(
                f"http:// redirects to https with a temporary {response.status_code}.",
                evidence={"hops": hops},
            )
        if location == url:
            return failed("http:// redirects to itself.", evidence={"hops": hops})
        url = location if "://" in location else url
    return failed("http:// does not reach https:// within 2 redirects.", evidence={"hops": hops})


@probe(
    "readiness.W058",
    item="A06",
    title="HSTS header on the public site",
    kind=NETWORK,
    reads=("READINESS.PUBLIC_URL", "SECURE_HSTS_SECONDS"),
)
def hsts_header(ctx: ProbeContext) -> ProbeResult:
    from django.conf import settings

    public = app_settings.PUBLIC_URL
    if not public:
        return skipped("READINESS['PUBLIC_URL'] is not set; the public site is not probed.")
    if not public.startswith("https://"):
        return failed(f"READINESS['PUBLIC_URL'] {public} is not https.")
    try:
        response, _ = fetch_public(public)
    except requests.RequestException as exc:
        return _unreachable("The public site", public, exc)
    header = response.headers.get("Strict-Transport-Security", "")
    evidence = {"status": response.status_code, "strict_transport_security": header}
    if not header:
        return failed(f"{public} sends no Strict-Transport-Security header.", evidence=evidence)
    directives = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")}
    try:
        max_age = int(directives.get("max-age", "max-age=0").split("=", 1)[1].strip('"'))
    except (IndexError, ValueError):
        return failed(f"The HSTS header {header!r} has no valid max-age.", evidence=evidence)
    if max_age < HSTS_YEAR:
        return failed(f"The HSTS max-age is {max_age} s, under a year.", evidence=evidence)
    configured = settings.SECURE_HSTS_SECONDS or 0
    if configured and max_age != configured:
        return warned(
            f"The site sends max-age={max_age} but SECURE_HSTS_SECONDS is {configured}: "
            "something in front of Django rewrites it.",
            evidence=evidence,
        )
    return passed(f"{public} sends HSTS max-age={max_age}.", evidence=evidence)
