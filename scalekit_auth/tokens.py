"""Verification of Scalekit tokens, done here rather than by the SDK.

The SDK checks neither issuer nor audience unless asked, caches the JWKS for the life of the
process and raises a bare ``KeyError`` for an unknown ``kid``. Here every token is checked for
its algorithm (RS256 only), signature, issuer (the environment URL), audience (our client id),
expiry, not-before and issued-at (with ``TOKEN_LEEWAY_SECONDS``). Keys come from a JWKS kept in
the Django cache for ``JWKS_CACHE_SECONDS``; each process's copy lives no longer than that entry,
so a key withdrawn from the JWKS (rotation over, or compromised) stops verifying everywhere within
that time. The JWKS is also refetched, at most once per ``JWKS_MIN_REFETCH_SECONDS``, when a token
names a key we do not know (a key rotation). Tokens that came straight from Scalekit's token
endpoint (login and refresh) may refetch at once: nobody but Scalekit can make us read them, and a
rotation must not log out the users who happen to refresh within that interval.

Access tokens and ID tokens share issuer, audience and subject. ``verify_access`` tells them
apart by what Scalekit puts in each (an access token has a ``jti`` and no ``at_hash``/``nonce``),
so an ID token, which travels in browser URLs (``id_token_hint``), never works as a bearer token.

Bearer tokens verified once are remembered by their SHA-256 until they expire (even if their key
is withdrawn meanwhile), so steady-state API requests cost a hash and a dict lookup.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import jwt
from django.core.cache import caches

from . import client
from .conf import app_settings

logger = logging.getLogger("scalekit_auth")

ALGORITHM = "RS256"
JWKS_TIMEOUT = 5.0
"""Seconds ``requests`` may wait to connect to the JWKS, and again for each read of its answer."""


class TokenError(Exception):
    """A token that must not be trusted; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class KeyCache:
    """Public keys by ``kid``: a process-local copy of the JWKS kept in the Django cache.

    Every copy lives as long as the Django cache entry it came from (``JWKS_CACHE_SECONDS`` from
    the fetch, which the entry records), then is reloaded: a key withdrawn from the JWKS (its
    rotation over, or compromised) stops verifying in every process within that time. Until then
    a known ``kid`` costs a dict lookup and a clock read.
    """

    def __init__(self) -> None:
        self._state: tuple[float, dict[str, Any]] = (0.0, {})  # (expires at, keys), swapped whole
        self._lock = threading.Lock()
        self._last_fetch = 0.0
        self._last_failure = 0.0

    def _cache_key(self) -> str:
        """``v2``: the entry records when it was fetched; the bare JWKS stored before is not read."""
        digest = hashlib.sha256(app_settings.ENVIRONMENT_URL.encode()).hexdigest()[:16]
        return f"scalekit_auth:jwks:v2:{digest}"

    def _load(self, entry: Any) -> None:
        """Take the keys of a Django cache entry and its end of life; ignore anything else."""
        if not isinstance(entry, dict) or not isinstance(entry.get("fetched_at"), float):
            return
        keys = {}
        for jwk in entry.get("jwks", {}).get("keys", []):
            if jwk.get("kty") != "RSA" or "kid" not in jwk:
                continue
            try:
                keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk, algorithm=ALGORITHM).key
            except jwt.PyJWTError:
                logger.warning("scalekit_auth: ignoring an unusable JWKS key %s", jwk.get("kid"))
        self._state = (entry["fetched_at"] + app_settings.JWKS_CACHE_SECONDS, keys)

    def _fetch(self, cache: Any) -> None:
        self._last_fetch = time.monotonic()
        try:
            document = client.fetch_jwks(timeout=JWKS_TIMEOUT)
        except Exception as exc:
            self._last_failure = time.monotonic()
            raise TokenError("jwks_unavailable", client.describe_error(exc)) from exc
        entry = {"fetched_at": time.time(), "jwks": document}
        cache.set(self._cache_key(), entry, app_settings.JWKS_CACHE_SECONDS)
        self._load(entry)

    def get(self, kid: str, *, trusted_source: bool = False) -> Any:
        """The key for ``kid``; ``trusted_source`` skips the refetch interval (see above)."""
        expires_at, keys = self._state
        key = keys.get(kid)
        if key is not None and time.time() < expires_at:
            return key
        cache = caches[app_settings.CACHE_ALIAS]
        with self._lock:
            expires_at, keys = self._state
            if kid not in keys or time.time() >= expires_at:
                # Another process or thread may have fetched since.
                self._load(cache.get(self._cache_key()))
            expires_at, keys = self._state
            fresh = time.time() < expires_at
            if fresh and kid in keys:
                return keys[kid]
            since_fetch = time.monotonic() - self._last_fetch
            since_failure = time.monotonic() - self._last_failure
            interval = app_settings.JWKS_MIN_REFETCH_SECONDS
            if not trusted_source:
                if fresh and since_fetch < interval:
                    raise TokenError("unknown_kid", f"no key {kid!r} (JWKS refetched recently)")
                if not fresh and since_failure < interval:
                    raise TokenError(
                        "jwks_unavailable",
                        f"the JWKS fetch failed less than {interval} s ago; retrying after that",
                    )
            self._fetch(cache)
            key = self._state[1].get(kid)
        if key is None:
            raise TokenError("unknown_kid", f"no key {kid!r} in the environment's JWKS")
        return key

    def clear(self) -> None:
        with self._lock:
            self._state = (0.0, {})
            self._last_fetch = 0.0
            self._last_failure = 0.0
            caches[app_settings.CACHE_ALIAS].delete(self._cache_key())


keys = KeyCache()


def issuer() -> str:
    return app_settings.ENVIRONMENT_URL.rstrip("/")


def verify(
    token: str,
    *,
    nonce: str | None = None,
    require: tuple[str, ...] = ("sub",),
    trusted_source: bool = False,
) -> dict[str, Any]:
    """Verify a Scalekit JWT and return its claims, or raise ``TokenError``.

    ``trusted_source``: the token is Scalekit's answer to our own token request, not something a
    caller sent us, so an unknown ``kid`` may refetch the JWKS at once.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", str(exc)) from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("bad_algorithm", f"alg {header.get('alg')!r} is not {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("malformed", "no kid in the token header")
    key = keys.get(kid, trusted_source=trusted_source)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=app_settings.CLIENT_ID,
            issuer=issuer(),
            leeway=app_settings.TOKEN_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", *require]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("expired", str(exc)) from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenError("wrong_issuer", str(exc)) from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenError("wrong_audience", str(exc)) from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad_signature", str(exc)) from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid", str(exc)) from exc
    if nonce is not None and claims.get("nonce") != nonce:
        raise TokenError("nonce_mismatch", "the ID token's nonce is not the one this login sent")
    return claims


def verify_access(token: str, *, trusted_source: bool = False) -> dict[str, Any]:
    """``verify`` a user's access token: refuses ID tokens and client-credentials tokens.

    A client-credentials token carries the same issuer and audience but names the client, not
    a user, and has no session: it must not act as a user.
    """
    claims = verify(token, require=("sub", "sid"), trusted_source=trusted_source)
    if "at_hash" in claims or "nonce" in claims or "jti" not in claims:
        raise TokenError("not_an_access_token", "an ID token cannot be used as an access token")
    if claims["sub"] == app_settings.CLIENT_ID:
        raise TokenError("not_a_user_token", "a client-credentials token cannot act as a user")
    return claims


class ClaimsCache:
    """Verified claims by token hash, bounded (least recently used out), until ``exp``."""

    def __init__(self) -> None:
        self._items: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> dict[str, Any] | None:
        claims = self._items.get(digest)
        if claims is None:
            return None
        if claims["exp"] + app_settings.TOKEN_LEEWAY_SECONDS < time.time():
            with self._lock:
                self._items.pop(digest, None)
            return None
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
        return claims

    def put(self, digest: bytes, claims: dict[str, Any]) -> None:
        with self._lock:
            self._items[digest] = claims
            while len(self._items) > app_settings.CLAIMS_CACHE_SIZE:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


claims_cache = ClaimsCache()


def verify_bearer(token: str) -> dict[str, Any]:
    """``verify_access`` for a token a caller sent, remembered by its hash until it expires."""
    digest = hashlib.sha256(token.encode()).digest()
    claims = claims_cache.get(digest)
    if claims is None:
        claims = verify_access(token)
        claims_cache.put(digest, claims)
    return claims
