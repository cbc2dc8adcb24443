"""Login, callback and logout through Scalekit's hosted login.

Login keeps a state, a nonce and a PKCE verifier server side (in the session, keyed by state so
two tabs can log in at once), then sends the browser to Scalekit. The callback checks the
state, exchanges the code with the verifier, verifies both tokens (issuer, audience, expiry,
signature, nonce), logs the user in with ``django.contrib.auth.login`` (which rotates the
session key) and keeps the tokens in the session. Logout is a POST with CSRF; it flushes the
session and sends the browser to Scalekit's logout with ``id_token_hint``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from scalekit.common.exceptions import (
    ScalekitBadRequestException,
    ScalekitException,
    ScalekitUnauthorizedException,
)

from . import events, rollout, session, tokens
from .backends import LinkRefused
from .client import describe_error, token_request
from .conf import app_settings
from .session import LOGIN_STATE_KEY

MAX_PENDING_LOGINS = 5
PASS_THROUGH = ("login_hint", "organization_id", "connection_id", "prompt")

logger = logging.getLogger("scalekit_auth")

_REFUSED_REQUEST = (
    "Scalekit refused the login request of this site (a configuration problem: please tell the "
    "site administrators)"
)

#: The error codes an authorization response may carry (RFC 6749 4.1.2.1, OpenID Connect Core
#: 3.1.2.6), each with the text shown for it. The callback's ``error`` comes from the query
#: string, which anyone can write: only these codes reach the event log and the page, never the
#: ``error_description``.
OAUTH_ERRORS = {
    "invalid_request": _REFUSED_REQUEST,
    "unauthorized_client": _REFUSED_REQUEST,
    "unsupported_response_type": _REFUSED_REQUEST,
    "invalid_scope": _REFUSED_REQUEST,
    "invalid_request_uri": _REFUSED_REQUEST,
    "invalid_request_object": _REFUSED_REQUEST,
    "request_not_supported": _REFUSED_REQUEST,
    "request_uri_not_supported": _REFUSED_REQUEST,
    "registration_not_supported": _REFUSED_REQUEST,
    "access_denied": "the sign-in was cancelled or refused at Scalekit",
    "server_error": "Scalekit could not complete the sign-in; try again in a moment",
    "temporarily_unavailable": "Scalekit is temporarily unavailable; try again in a moment",
    "login_required": "Scalekit needs you to sign in again",
    "interaction_required": "Scalekit needs you to complete the sign-in on its page",
    "account_selection_required": "Scalekit needs you to choose an account",
    "consent_required": "Scalekit needs your consent to sign you in here",
}
UNREACHABLE_TEXT = (
    "this site could not reach Scalekit; try again in a moment, and tell the site "
    "administrators if it goes on"
)
UNKNOWN_OAUTH_ERROR = "unknown_error"
UNKNOWN_OAUTH_ERROR_TEXT = "Scalekit reported an error this site does not recognise"
DESCRIPTION_LOG_LENGTH = 200


def redirect_uri(request: HttpRequest) -> str:
    return app_settings.REDIRECT_URI or request.build_absolute_uri(
        reverse("scalekit_auth:callback")
    )


def default_next() -> str:
    return resolve_url(app_settings.LOGIN_REDIRECT_URL or settings.LOGIN_REDIRECT_URL)


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """``candidate`` when it stays on this site, else the default landing page."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default_next()


def failure(
    request: HttpRequest,
    reason: str,
    detail: str = "",
    *,
    status: int = 400,
    claims: dict | None = None,
    shown: str | None = None,
    code: str = "",
) -> HttpResponse:
    """Log ``reason: detail`` and show the error page: ``detail``, or ``shown`` instead of it
    when given (``detail`` is then for the administrators only: the auth event log); ``code``
    is shown next to the reason."""
    events.record(
        "login", False, f"{reason}: {detail}" if detail else reason, request=request, claims=claims
    )
    context = {
        "reason": reason,
        "detail": detail if shown is None else shown,
        "code": code,
        "login_url": reverse("scalekit_auth:login"),
    }
    return render(request, "scalekit_auth/error.html", context, status=status)


def unreachable(
    request: HttpRequest, reason: str, exc: Exception, *, detail: str = ""
) -> HttpResponse:
    """A 502 for a login that could not reach Scalekit. The cause (``client.describe_error``:
    a TLS verification failure and the setting to fix, ...) goes to the event log (which logs
    it too); the page only says Scalekit could not be reached."""
    detail = detail or describe_error(exc)
    return failure(request, reason, detail, status=502, shown=UNREACHABLE_TEXT)


def authorization_error(request: HttpRequest) -> HttpResponse:
    """The failure for a callback that carries ``error``: a known OAuth code and its fixed text,
    or ``unknown_error``. The description (anyone's text) only goes to the Python log, cut short."""
    error = request.GET["error"]
    code = error if error in OAUTH_ERRORS else UNKNOWN_OAUTH_ERROR
    logger.info(
        "Scalekit login callback error %r (logged as %s): %r",
        error[:DESCRIPTION_LOG_LENGTH],
        code,
        request.GET.get("error_description", "")[:DESCRIPTION_LOG_LENGTH],
    )
    return failure(
        request,
        "scalekit_error",
        code,
        shown=OAUTH_ERRORS.get(code, UNKNOWN_OAUTH_ERROR_TEXT),
        code=code,
    )


def legacy_login(next_url: str, email: str = "") -> HttpResponse:
    query = {"next": next_url, **({"username": email} if email else {})}
    return HttpResponseRedirect(f"{app_settings.LEGACY_LOGIN_URL}?{urlencode(query)}")


@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    next_url = safe_next(request, data.get("next"))
    params = {name: data[name] for name in PASS_THROUGH if data.get(name)}
    if request.GET.get("idp_initiated_login"):
        try:
            claims = tokens.verify(request.GET["idp_initiated_login"], require=("organization_id",))
        except tokens.TokenError as exc:
            return failure(request, "idp_initiated_login_invalid", exc.reason)
        params = {
            "organization_id": claims["organization_id"],
            "connection_id": claims.get("connection_id", ""),
            "login_hint": claims.get("login_hint", ""),
        }
        next_url = safe_next(request, claims.get("relay_state"))
    state = rollout.current()
    if not state.enabled:
        return legacy_login(next_url)
    if state.is_partial:
        email = params.get("login_hint", "") or data.get("email", "")
        if not email:
            return render(request, "scalekit_auth/login.html", {"next": next_url})
        if not state.uses_scalekit(email):
            return legacy_login(next_url, email)
        params["login_hint"] = email
    return start_login(request, next_url, {k: v for k, v in params.items() if v})


def start_login(request: HttpRequest, next_url: str, params: dict[str, str]) -> HttpResponse:
    """Remember a new login attempt in the session and send the browser to Scalekit."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    pending = dict(request.session.get(LOGIN_STATE_KEY, {}))
    pending[state] = {
        "nonce": nonce,
        "verifier": verifier,
        "next": next_url,
        "started": time.time(),
    }
    for old in sorted(pending, key=lambda s: pending[s]["started"])[:-MAX_PENDING_LOGINS]:
        del pending[old]
    request.session[LOGIN_STATE_KEY] = pending
    query = {
        "response_type": "code",
        "client_id": app_settings.CLIENT_ID,
        "redirect_uri": redirect_uri(request),
        "scope": " ".join(app_settings.SCOPES),
        "state": state,
        "nonce": nonce,
        **params,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return HttpResponseRedirect(f"{tokens.issuer()}/oauth/authorize?{urlencode(query)}")


@never_cache
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    pending = dict(request.session.get(LOGIN_STATE_KEY, {}))
    attempt = pending.pop(state, None) if state else None
    request.session[LOGIN_STATE_KEY] = pending
    if attempt is None:
        return failure(
            request, "state_mismatch", "this login was not started here, or was already used"
        )
    if time.time() - attempt["started"] > app_settings.LOGIN_STATE_TTL:
        return failure(request, "state_expired", "the login took too long; start again")
    if request.GET.get("error"):
        return authorization_error(request)
    code = request.GET.get("code")
    if not code:
        return failure(request, "no_code", "the callback carried no authorization code")
    try:
        answer = token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri(request),
                "code_verifier": attempt["verifier"],
            }
        )
    except (ScalekitBadRequestException, ScalekitUnauthorizedException) as exc:
        return failure(request, "code_rejected", _oauth_error(exc))
    except ScalekitException as exc:
        return unreachable(request, "scalekit_unavailable", exc)
    try:
        id_claims = tokens.verify(answer["id_token"], nonce=attempt["nonce"], trusted_source=True)
        access_claims = tokens.verify_access(answer["access_token"], trusted_source=True)
    except tokens.TokenError as exc:
        if exc.reason == "jwks_unavailable":
            return unreachable(request, "token_jwks_unavailable", exc, detail=exc.detail)
        return failure(request, f"token_{exc.reason}", exc.detail)
    except KeyError as exc:
        return failure(request, "token_missing", f"no {exc.args[0]} in the token response")
    if id_claims["sub"] != access_claims["sub"]:
        return failure(
            request, "token_subject_mismatch", "ID and access tokens name different users"
        )
    # The login form's email chose Scalekit, but the person may have signed in as someone else
    # on the hosted page: the rollout decides by the account that actually signed in.
    state = rollout.current()
    email = id_claims.get("email") or ""
    if not state.enabled or (state.is_partial and not state.uses_scalekit(email)):
        events.record(
            "login",
            False,
            f"rollout_excluded: {email or id_claims['sub']} is not in the Scalekit rollout",
            request=request,
            claims=id_claims,
        )
        return legacy_login(attempt["next"], email)
    claims = {
        **id_claims,
        **{
            k: access_claims[k]
            for k in ("roles", "permissions", "oid", "xuid", "xoid")
            if k in access_claims
        },
    }
    try:
        user = authenticate(request, scalekit_claims=claims)
    except LinkRefused as exc:
        return failure(request, "link_refused", str(exc), status=403, claims=claims)
    if user is None:
        return failure(
            request, "user_inactive", "this account is disabled", status=403, claims=claims
        )
    auth_login(request, user)  # with user.backend, the backend authenticate() used
    session.store(
        request,
        session.session_data(
            answer["access_token"], access_claims, answer.get("refresh_token"), answer["id_token"]
        ),
    )
    session.remember(request, user, access_claims)
    events.record("login", True, "hosted login", request=request, user=user, claims=claims)
    return HttpResponseRedirect(attempt["next"])


def _oauth_error(exc: ScalekitException) -> str:
    """The OAuth error of a refused token request (``invalid_grant: ...``), never a token."""
    try:
        body = json.loads(getattr(exc, "err_details", "") or "")
        return f"{body['error']}: {body.get('error_description', '')}"[:200]
    except (ValueError, TypeError, KeyError):
        return type(exc).__name__


@never_cache
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    data = session.get(request) or {}
    user = request.user if request.user.is_authenticated else None
    session.forget(request)
    auth_logout(request)
    events.record(
        "logout", True, "user logout", request=request, user=user, claims=data.get("claims")
    )
    id_token = data.get("id_token")
    if not id_token:
        return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL or "/"))
    query: dict[str, Any] = {"id_token_hint": id_token}
    if app_settings.POST_LOGOUT_REDIRECT_URI:
        query["post_logout_redirect_uri"] = app_settings.POST_LOGOUT_REDIRECT_URI
    return HttpResponseRedirect(f"{tokens.issuer()}/oidc/logout?{urlencode(query)}")
