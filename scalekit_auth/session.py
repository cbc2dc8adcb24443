"""Scalekit tokens in the server-side Django session, and their refresh.

The browser only ever holds the Django session cookie. The session keeps the access, refresh
and ID tokens, the access token's expiry and the few claims ``request.scalekit`` needs, so a
request with a valid token makes no network call and verifies nothing.

Refresh tokens rotate, so two requests of one session refreshing at once would make Scalekit
see the old token reused and revoke the session. A lock in the Django cache (Redis in
production, shared by every process) lets one request refresh; the others wait for its result,
which it leaves in the cache for a minute under the old token's hash. The lock outlives the
slowest refresh (``REFRESH_LOCK_TIMEOUT`` > ``LONGEST_REFRESH_SECONDS``), only its holder
releases it, and its holder looks for a result again once it has it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from scalekit.common.exceptions import (
    ScalekitBadRequestException,
    ScalekitException,
    ScalekitUnauthorizedException,
)
from scalekit.core import DEFAULT_HTTP_TIMEOUT as SDK_HTTP_TIMEOUT

from . import tokens
from .client import describe_error, get_client, token_request
from .conf import app_settings
from .context import context_claims
from .models import ScalekitSession

logger = logging.getLogger("scalekit_auth")

SESSION_KEY = "_scalekit"
LOGIN_STATE_KEY = "_scalekit_login"
RESULT_TTL = 60
POLL_INTERVAL = 0.05
LONGEST_REFRESH_SECONDS = sum(SDK_HTTP_TIMEOUT) + 2 * tokens.JWKS_TIMEOUT
"""The SDK's token request (its fixed connect and read timeouts), then a JWKS fetch for a new
``kid`` (``tokens.JWKS_TIMEOUT`` to connect, again to read). ``requests`` applies a read timeout
to each read, not to the whole answer; a token answer of a few kilobytes comes in one or two."""


class RefreshFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def session_data(
    access_token: str, access_claims: dict[str, Any], refresh_token: str | None, id_token: str
) -> dict[str, Any]:
    return {
        "access_token": access_token,
        "refresh_token": refresh_token or "",
        "id_token": id_token,
        "expires_at": int(access_claims["exp"]),
        "claims": context_claims(access_claims),
    }


def store(request: HttpRequest, data: dict[str, Any]) -> None:
    request.session[SESSION_KEY] = data


def get(request: HttpRequest) -> dict[str, Any] | None:
    return request.session.get(SESSION_KEY)


def remember(request: HttpRequest, user: Any, access_claims: dict[str, Any]) -> None:
    """Record the (just logged in) session as one of ``user``'s Scalekit sessions."""
    if request.session.session_key is None:
        request.session.save()
    lifetime = int(access_claims["exp"]) - int(access_claims["iat"])
    ScalekitSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={
            "user": user,
            "scalekit_session_id": access_claims.get("sid", ""),
            "access_token_lifetime": max(lifetime, 0),
        },
    )
    store = _session_store()
    others = ScalekitSession.objects.filter(user=user).exclude(
        session_key=request.session.session_key
    )
    for row in others:
        if not store.exists(row.session_key):
            row.delete()  # expired or flushed elsewhere


def forget(request: HttpRequest) -> None:
    """Before a logout: drop this session's record and the cached result of its last refresh."""
    if request.session.session_key:
        ScalekitSession.objects.filter(session_key=request.session.session_key).delete()
    result_key = (get(request) or {}).get("refreshed_result_key")
    if result_key:
        caches[app_settings.CACHE_ALIAS].delete(result_key)


def end_sessions(user: Any) -> int:
    """End every session of ``user`` that holds Scalekit tokens; return how many."""
    return end_session_records(ScalekitSession.objects.filter(user=user))


def end_session_records(records: Any) -> int:
    """Delete the Django sessions of these ``ScalekitSession`` rows, then the rows."""
    store = _session_store()
    rows = list(records)
    for row in rows:
        store.delete(row.session_key)
    ScalekitSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


def end_sessions_of_inactive_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of the user model: a user saved inactive loses its Scalekit sessions."""
    if not getattr(instance, "is_active", True) and not kwargs.get("raw"):
        end_sessions(instance)


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore()


def needs_refresh(data: dict[str, Any], now: float | None = None) -> bool:
    return data["expires_at"] - (now or time.time()) < app_settings.REFRESH_BEFORE_SECONDS


def _keys(refresh_token: str) -> tuple[str, str]:
    digest = hashlib.sha256(refresh_token.encode()).hexdigest()
    return f"scalekit_auth:refresh-lock:{digest}", f"scalekit_auth:refreshed:{digest}"


def lock_timeout() -> int:
    """``REFRESH_LOCK_TIMEOUT``, checked to outlive the longest refresh.

    A lock that expired while its holder's token request is still on its way would let a second
    request send the same refresh token, and Scalekit would end the session. Raises
    ``ImproperlyConfigured`` for a value that is not a whole number of seconds above
    ``LONGEST_REFRESH_SECONDS``.
    """
    value = app_settings.REFRESH_LOCK_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int) or value <= LONGEST_REFRESH_SECONDS:
        raise ImproperlyConfigured(
            f"SCALEKIT_AUTH['REFRESH_LOCK_TIMEOUT'] is {value!r}; it must be a whole number of "
            f"seconds above {LONGEST_REFRESH_SECONDS:g}, the longest a refresh can take (the "
            f"SDK's token request, {SDK_HTTP_TIMEOUT[0]} s to connect and {SDK_HTTP_TIMEOUT[1]} s "
            f"to read, then a JWKS fetch, {tokens.JWKS_TIMEOUT:g} s + {tokens.JWKS_TIMEOUT:g} s). "
            "Leave it out for the default (60)."
        )
    return value


def refresh(data: dict[str, Any]) -> dict[str, Any] | None:
    """New session data from the refresh token, or None to keep using the current (still valid)
    access token while another process finishes refreshing. Raises ``RefreshFailed``.

    The per-session lock holds a value unique to this call and lives ``lock_timeout()`` seconds,
    longer than the refresh can take; it is released only by its holder.
    """
    refresh_token = data.get("refresh_token")
    still_valid = data["expires_at"] > time.time()
    if not refresh_token:
        if still_valid:
            return None
        raise RefreshFailed("access token expired and there is no refresh token")
    cache = caches[app_settings.CACHE_ALIAS]
    lock_key, result_key = _keys(refresh_token)
    done = cache.get(result_key)
    if done is not None:
        return done
    timeout = lock_timeout()
    try:
        get_client()  # built (its own token request) before the lock: the lock's time is ours
    except ScalekitException as exc:
        return _unreachable(exc, still_valid)
    owner = secrets.token_hex(16)
    if not cache.add(lock_key, owner, timeout=timeout):
        return _wait_for_other(cache, lock_key, result_key, still_valid, timeout)
    try:
        # Another request may have refreshed and released the lock since our first look.
        done = cache.get(result_key)
        if done is not None:
            return done
        return _refresh_holding_lock(cache, data, refresh_token, result_key, still_valid)
    finally:
        _release(cache, lock_key, owner)


def _refresh_holding_lock(
    cache: Any, data: dict[str, Any], refresh_token: str, result_key: str, still_valid: bool
) -> dict[str, Any] | None:
    try:
        answer = token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
    except (ScalekitBadRequestException, ScalekitUnauthorizedException) as exc:
        raise RefreshFailed("refresh token refused by Scalekit") from exc
    except ScalekitException as exc:
        return _unreachable(exc, still_valid)
    try:
        claims = tokens.verify_access(answer["access_token"], trusted_source=True)
    except tokens.TokenError as exc:
        raise RefreshFailed(f"refreshed access token rejected: {exc.reason}") from exc
    new = session_data(
        answer["access_token"],
        claims,
        answer.get("refresh_token"),
        answer.get("id_token") or data["id_token"],
    )
    new["refreshed_result_key"] = result_key  # for ``forget`` at logout
    cache.set(result_key, new, RESULT_TTL)
    return new


def _unreachable(exc: ScalekitException, still_valid: bool) -> None:
    """Keep a still valid token through a Scalekit failure; otherwise ``RefreshFailed``."""
    # The cause (a TLS verification failure names the setting to fix) only goes to the log:
    # the RefreshFailed reason reaches JSON callers.
    if still_valid:
        logger.warning(
            "scalekit_auth: refresh failed (%s); keeping the current token", describe_error(exc)
        )
        return None
    logger.warning("scalekit_auth: refresh failed (%s); logging the user out", describe_error(exc))
    raise RefreshFailed(f"Scalekit unreachable during refresh ({type(exc).__name__})") from exc


def _release(cache: Any, lock_key: str, owner: str) -> None:
    """Delete the lock if it still holds ``owner``: never a lock another request now holds.

    The Django cache has no compare-and-delete, so this is a get then a delete. The gap between
    them only matters if the lock expires in it, and the lock outlives the refresh by
    ``lock_timeout() - LONGEST_REFRESH_SECONDS`` seconds.
    """
    if cache.get(lock_key) == owner:
        cache.delete(lock_key)


def _wait_for_other(
    cache: Any, lock_key: str, result_key: str, still_valid: bool, timeout: float
) -> dict[str, Any] | None:
    """The result of the request holding the lock, as soon as it is in the cache.

    Gives up when the lock is gone with no result (its holder failed) or after ``timeout``,
    the longest the holder can keep the lock.
    """
    if still_valid:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        held = cache.get(lock_key) is not None
        done = cache.get(result_key)  # read after the lock: the holder sets it before releasing
        if done is not None:
            return done
        if not held:
            raise RefreshFailed("another request's refresh of this session failed")
    raise RefreshFailed("timed out waiting for another request's refresh")
