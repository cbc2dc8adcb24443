"""The emulator's OAuth 2.0 / OIDC authorization server, without HTTP.

Holds the registered client, the emulated browser sessions, authorization codes, refresh tokens
and management tokens, and mints the tokens with the claims Scalekit puts in them
(wire doc section 3). ``web.py`` maps requests onto these methods.

Where the real service's behaviour is unknown, the choice made here is the one the OAuth and
OIDC specifications ask for, and is said so at the method.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt

from . import ids
from .directory import Directory
from .signing import KeySet

CLIENT_KIND = "client"
# Expired codes and management tokens are dropped at once when there are more than this many,
# and everything expired (refresh tokens and sessions too) every PURGE_INTERVAL seconds.
PURGE_ABOVE = 10_000
PURGE_INTERVAL = 60
# How long a revoked refresh-token family is remembered: longer than any token response takes
# to build, so a rotation in flight when its family was revoked cannot add a token to it.
REVOKED_FAMILY_MEMORY = 300
# The longest token lifetime the control API accepts (366 days), and the longest refresh reuse
# grace (an hour; the real service is said to allow about 30 s).
MAX_LIFETIME = 366 * 24 * 3600
MAX_REUSE_GRACE = 3600
# The environment's password/passwordless connection: the first ``amr`` entry of an ID token.
DEFAULT_CONNECTION_ID = "conn_000000000000000001"


class OAuthError(Exception):
    """An OAuth error answer: ``error`` code, description and the HTTP status to use."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class Lifetimes:
    access_token: int = 299
    id_token: int = 299
    refresh_token: int = 30 * 24 * 3600
    code: int = 600
    management_token: int = 86399
    # Seconds an already rotated refresh token is still accepted (the SDK mentions ~30 s on the
    # real service). 0 by default, so reuse of a rotated token is always refused in tests.
    refresh_reuse_grace: int = 0

    def update(self, data: dict[str, Any]) -> None:
        """Set the lifetimes in ``data``: all of them, or none when one is refused
        (``ValueError`` naming it)."""
        for name, value in data.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(
                    f"unknown token lifetime {name!r}; one of {', '.join(self.__dataclass_fields__)}"
                )
            limit = MAX_REUSE_GRACE if name == "refresh_reuse_grace" else MAX_LIFETIME
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise ValueError(
                    f"{name} must be a whole number of seconds between 0 and {limit}, not {value!r}"
                )
        for name, value in data.items():
            setattr(self, name, value)


@dataclass
class Client:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: set[str] = field(default_factory=set)
    post_logout_redirect_uris: set[str] = field(default_factory=set)
    initiate_login_uri: str = ""


@dataclass
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    scope: str
    response_type: str = ""
    state: str = ""
    nonce: str = ""
    login_hint: str = ""
    organization_id: str = ""
    connection_id: str = ""
    prompt: str = ""
    code_challenge: str = ""
    code_challenge_method: str = ""

    FIELDS = (
        "client_id",
        "redirect_uri",
        "scope",
        "response_type",
        "state",
        "nonce",
        "login_hint",
        "organization_id",
        "connection_id",
        "prompt",
        "code_challenge",
        "code_challenge_method",
    )

    def as_params(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.FIELDS if getattr(self, name)}


@dataclass
class Session:
    sid: str
    user_id: str
    organization_id: str
    connection_id: str
    created_at: float
    active: bool = True
    ended_at: float | None = None


@dataclass
class Code:
    request: AuthorizeRequest
    session: Session
    expires_at: float
    used: bool = False
    # The refresh-token family of the exchange, so that a replay can revoke what it issued.
    family: str = ""


@dataclass
class RefreshToken:
    client_id: str
    session: Session
    scope: str
    expires_at: float
    family: str
    rotated_at: float | None = None


def _b64url_sha256_half(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def pkce_s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def check_uris(uris: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first URI a client could not register."""
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError(f"{uri!r} is not an absolute http(s) URI without a fragment")


class AuthServer:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        directory: Directory,
        keys: KeySet,
        persistence: Any = None,
    ) -> None:
        self.issuer = issuer
        self.directory = directory
        self.keys = keys
        self.lifetimes = Lifetimes()
        self._persistence = persistence
        self._lock = threading.Lock()
        self.client = Client(client_id, client_secret)
        self._load_client()
        self._sessions: dict[str, Session] = {}
        self._codes: dict[str, Code] = {}
        self._refresh: dict[str, RefreshToken] = {}
        # family -> when it was revoked; see REVOKED_FAMILY_MEMORY.
        self._revoked_families: dict[str, float] = {}
        self._management: dict[str, float] = {}
        self._next_purge = 0.0

    # -- client registration ---------------------------------------------------------------

    def _load_client(self) -> None:
        if self._persistence is None:
            return
        for key, blob in self._persistence.load(CLIENT_KIND):
            if key == self.client.client_id:
                data = json.loads(blob)
                self.client.redirect_uris = set(data["redirect_uris"])
                self.client.post_logout_redirect_uris = set(data["post_logout_redirect_uris"])
                self.client.initiate_login_uri = data.get("initiate_login_uri", "")

    def _save_client(self) -> None:
        if self._persistence is None:
            return
        blob = json.dumps(
            {
                "redirect_uris": sorted(self.client.redirect_uris),
                "post_logout_redirect_uris": sorted(self.client.post_logout_redirect_uris),
                "initiate_login_uri": self.client.initiate_login_uri,
            }
        ).encode()
        self._persistence.save(CLIENT_KIND, self.client.client_id, blob)

    def register_uris(
        self,
        redirect_uris: Sequence[str] = (),
        post_logout_redirect_uris: Sequence[str] = (),
        initiate_login_uri: str | None = None,
    ) -> None:
        check_uris(
            [
                *redirect_uris,
                *post_logout_redirect_uris,
                *([initiate_login_uri] if initiate_login_uri else []),
            ]
        )
        with self._lock:
            self.client.redirect_uris.update(redirect_uris)
            self.client.post_logout_redirect_uris.update(post_logout_redirect_uris)
            if initiate_login_uri is not None:
                self.client.initiate_login_uri = initiate_login_uri
            self._save_client()

    def reset(self) -> None:
        with self._lock:
            self.client.redirect_uris.clear()
            self.client.post_logout_redirect_uris.clear()
            self.client.initiate_login_uri = ""
            self._save_client()
            self._sessions.clear()
            self._codes.clear()
            self._refresh.clear()
            self._revoked_families.clear()
            self._management.clear()
            self.lifetimes = Lifetimes()

    # -- forgetting what expired -----------------------------------------------------------

    def purge_expired(self, now: float | None = None) -> dict[str, int]:
        """Forget what can no longer be used at ``now`` (default: the clock); return how many of
        each kind were dropped. Also run every ``PURGE_INTERVAL`` seconds by the token and
        login paths, so a long-running emulator's memory follows its live state."""
        with self._lock:
            return self._purge(time.time() if now is None else now)

    def _purge_if_due(self, now: float) -> None:
        """Purge at most once every ``PURGE_INTERVAL`` seconds (under the lock)."""
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL
            self._purge(now)

    def _purge(self, now: float) -> dict[str, int]:
        """Drop expired refresh tokens, codes and management tokens, revoked families past
        ``REVOKED_FAMILY_MEMORY``, and sessions that are over (under the lock).

        A session is over when no live refresh token or code refers to it and it either ended
        more than ``REVOKED_FAMILY_MEMORY`` seconds ago (kept that long so a logout can still
        name it) or started more than the refresh-token lifetime ago: the emulator has no
        separate session lifetime, so a browser session without tokens lasts that long.
        """
        before = {
            "refresh_tokens": len(self._refresh),
            "codes": len(self._codes),
            "management_tokens": len(self._management),
            "revoked_families": len(self._revoked_families),
            "sessions": len(self._sessions),
        }
        self._refresh = {v: t for v, t in self._refresh.items() if t.expires_at >= now}
        self._codes = {k: c for k, c in self._codes.items() if c.expires_at >= now}
        self._management = {t: exp for t, exp in self._management.items() if exp > now}
        self._revoked_families = {
            f: at for f, at in self._revoked_families.items() if now - at < REVOKED_FAMILY_MEMORY
        }
        in_use = {t.session.sid for t in self._refresh.values()}
        in_use.update(c.session.sid for c in self._codes.values())
        session_lifetime = self.lifetimes.refresh_token

        def over(session: Session) -> bool:
            if session.sid in in_use:
                return False
            if session.ended_at is not None:
                return now - session.ended_at >= REVOKED_FAMILY_MEMORY
            return now - session.created_at >= session_lifetime

        self._sessions = {sid: s for sid, s in self._sessions.items() if not over(s)}
        after = {
            "refresh_tokens": len(self._refresh),
            "codes": len(self._codes),
            "management_tokens": len(self._management),
            "revoked_families": len(self._revoked_families),
            "sessions": len(self._sessions),
        }
        return {kind: before[kind] - after[kind] for kind in before}

    # -- client authentication and management tokens ---------------------------------------

    def authenticate_client(self, client_id: str, client_secret: str) -> None:
        valid = client_id == self.client.client_id and hmac.compare_digest(
            client_secret.encode(), self.client.client_secret.encode()
        )
        if not valid:
            raise OAuthError("invalid_client", "client authentication failed", status=401)

    def client_credentials(self, scope: str = "") -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.lifetimes.management_token
        token = self.keys.sign(
            {
                "iss": self.issuer,
                "sub": self.client.client_id,
                "aud": [self.client.client_id],
                "client_id": self.client.client_id,
                "iat": now - 1,
                "nbf": now - 1,
                "exp": now + lifetime,
                "jti": ids.new_id("tkn"),
                "scopes": scope.split() if scope else [],
            }
        )
        with self._lock:
            self._purge_if_due(now)
            if len(self._management) > PURGE_ABOVE:
                self._management = {t: exp for t, exp in self._management.items() if exp > now}
            self._management[token] = now + lifetime
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope or "openid",
        }

    def management_token_valid(self, token: str) -> bool:
        """True for an unexpired management token this emulator issued (or, after a restart with
        persisted keys, one that still verifies)."""
        expires_at = self._management.get(token)
        if expires_at is not None:
            return expires_at > time.time()
        try:
            claims = self.keys.decode(token)
        except jwt.PyJWTError:
            return False
        if claims.get("sub") != self.client.client_id or "sid" in claims:
            return False
        with self._lock:
            self._management[token] = claims["exp"]
        return True

    # -- authorization endpoint ------------------------------------------------------------

    def validate_authorize(self, params: dict[str, str]) -> AuthorizeRequest:
        """Check an authorization request. Errors here are shown on a page, never redirected,
        because the redirect URI itself is not trusted yet (RFC 6749 section 4.1.2.1)."""
        if params.get("client_id") != self.client.client_id:
            raise OAuthError("invalid_client", f"unknown client_id {params.get('client_id', '')!r}")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.client.redirect_uris:
            raise OAuthError(
                "redirect_uri_mismatch",
                f"redirect_uri {redirect_uri!r} is not registered for this client. "
                "Register it in Scalekit's dashboard (here: the emulator's control API).",
            )
        request = AuthorizeRequest(
            **{name: params.get(name, "") for name in AuthorizeRequest.FIELDS}
        )
        return request

    def redirect_error(self, request: AuthorizeRequest, error: str, description: str) -> str:
        params = {"error": error, "error_description": description}
        if request.state:
            params["state"] = request.state
        return with_query(request.redirect_uri, params)

    def precheck(self, request: AuthorizeRequest) -> str | None:
        """Errors that go back to the (now trusted) redirect URI, or None. Checked on the
        login page's GET and again on its POST, which a client can send by itself."""
        if not request.response_type:
            return self.redirect_error(request, "invalid_request", "response_type is required")
        if request.response_type != "code":
            return self.redirect_error(
                request,
                "unsupported_response_type",
                f"response_type {request.response_type!r} is not supported; use code",
            )
        if request.code_challenge and request.code_challenge_method not in ("", "S256", "plain"):
            return self.redirect_error(
                request, "invalid_request", "unsupported code_challenge_method"
            )
        if "openid" not in request.scope.split():
            return self.redirect_error(request, "invalid_scope", "scope must include openid")
        if (
            request.organization_id
            and self.directory.get_organization(request.organization_id) is None
        ):
            return self.redirect_error(
                request, "invalid_request", f"organization {request.organization_id} not found"
            )
        return None

    def session(self, sid: str) -> Session | None:
        """The active session ``sid``, or None."""
        session = self._sessions.get(sid)
        return session if session is not None and session.active else None

    def find_session(self, sid: str) -> Session | None:
        """The session ``sid``, ended or not."""
        return self._sessions.get(sid)

    def login(self, request: AuthorizeRequest, email: str) -> tuple[Session, str]:
        """Log ``email`` in for ``request``; return the new session and the redirect with a code.

        Raises ``LookupError`` with a message for the login page when the user cannot log in.
        """
        user = self.directory.find_user_by_email(email.strip())
        if user is None:
            raise LookupError(f"No user with the email {email.strip()!r} in this environment.")
        org_ids = [m.organization_id for m in user.memberships]
        if request.organization_id:
            if request.organization_id not in org_ids:
                raise LookupError(
                    f"{email} is not a member of organization {request.organization_id}."
                )
            organization_id = request.organization_id
        else:
            organization_id = org_ids[0] if org_ids else ""
        session = Session(
            sid=ids.new_id("ses"),
            user_id=user.id,
            organization_id=organization_id,
            connection_id=request.connection_id or DEFAULT_CONNECTION_ID,
            created_at=time.time(),
        )
        with self._lock:
            self._purge_if_due(session.created_at)
            self._sessions[session.sid] = session
        self.directory.record_login(user.id)
        return session, self.issue_code(request, session)

    def issue_code(self, request: AuthorizeRequest, session: Session) -> str:
        code = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._purge_if_due(now)
            if len(self._codes) > PURGE_ABOVE:
                self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now}
            self._codes[code] = Code(request, session, now + self.lifetimes.code)
        params = {"code": code}
        if request.state:
            params["state"] = request.state
        return with_query(request.redirect_uri, params)

    # -- token endpoint --------------------------------------------------------------------

    def exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        code_value = form.get("code", "")
        with self._lock:
            code = self._codes.get(code_value)
            if code is None:
                raise OAuthError("invalid_grant", "authorization code is invalid")
            if code.used:
                # A replayed code also revokes what the first exchange issued (RFC 6749 10.5),
                # including a refresh token that exchange has not stored yet (its family).
                self._revoke_session_tokens(code.session.sid)
                self._revoke_family(code.family)
                raise OAuthError("invalid_grant", "authorization code was already used")
            code.used = True
            code.family = secrets.token_hex(8)
        if code.expires_at < time.time():
            raise OAuthError("invalid_grant", "authorization code expired")
        if form.get("redirect_uri", "") != code.request.redirect_uri:
            raise OAuthError(
                "invalid_grant", "redirect_uri does not match the authorization request"
            )
        self._check_pkce(code.request, form.get("code_verifier"))
        if not code.session.active:
            raise OAuthError("invalid_grant", "the session of this code has ended")
        return self._token_response(
            code.session, code.request.scope, code.request.nonce, code_value, family=code.family
        )

    @staticmethod
    def _check_pkce(request: AuthorizeRequest, verifier: str | None) -> None:
        if not request.code_challenge:
            return
        if not verifier:
            raise OAuthError("invalid_grant", "code_verifier is required (PKCE)")
        expected = verifier if request.code_challenge_method == "plain" else pkce_s256(verifier)
        if not hmac.compare_digest(expected, request.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")

    def refresh(self, form: dict[str, str]) -> dict[str, Any]:
        """Rotate a refresh token. A token already rotated counts as reused unless it comes
        back within ``refresh_reuse_grace`` seconds of its rotation; with the default grace of
        0 any second use is a reuse, even at the same clock reading (the clock is read under
        the lock, so concurrent uses are ordered)."""
        value = form.get("refresh_token", "")
        with self._lock:
            now = time.time()
            self._purge_if_due(now)
            token = self._refresh.get(value)
            if token is None or token.expires_at < now:
                raise OAuthError("invalid_grant", "refresh token is invalid or expired")
            reused = token.rotated_at is not None and not (
                0 <= now - token.rotated_at < self.lifetimes.refresh_reuse_grace
            )
            if reused:
                # Reuse of a rotated token: treat the whole family as stolen.
                self._revoke_family(token.family)
                raise OAuthError("invalid_grant", "refresh token was already used")
            if not token.session.active:
                raise OAuthError("invalid_grant", "the session of this refresh token has ended")
            token.rotated_at = token.rotated_at or now
        return self._token_response(token.session, token.scope, "", None, family=token.family)

    def _revoke_family(self, family: str) -> None:
        """Delete the family's refresh tokens and remember it as revoked (under the lock)."""
        now = time.time()
        if len(self._revoked_families) > PURGE_ABOVE:
            self._revoked_families = {
                f: at
                for f, at in self._revoked_families.items()
                if now - at < REVOKED_FAMILY_MEMORY
            }
        self._revoked_families[family] = now
        for value in [v for v, t in self._refresh.items() if t.family == family]:
            del self._refresh[value]

    def _revoke_session_tokens(self, sid: str) -> None:
        for value in [v for v, t in self._refresh.items() if t.session.sid == sid]:
            del self._refresh[value]

    def _token_response(
        self, session: Session, scope: str, nonce: str, code: str | None, family: str
    ) -> dict[str, Any]:
        """Mint the tokens (outside the lock), then store the refresh token under the lock,
        unless its family was revoked or its session ended meanwhile (a concurrent reuse of the
        token or code being exchanged): then nothing is returned and the grant is refused."""
        user = self.directory.get_user(session.user_id)
        if user is None:
            raise OAuthError("invalid_grant", "the user of this grant no longer exists")
        access_token = self.mint_access_token(session, user, scope)
        id_token = self.mint_id_token(session, user, nonce, access_token, code)
        response = {
            "access_token": access_token,
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": self.lifetimes.access_token,
            "scope": scope,
        }
        offline = "offline_access" in scope.split()
        refresh = secrets.token_urlsafe(48)
        with self._lock:
            if family in self._revoked_families:
                raise OAuthError(
                    "invalid_grant", "this grant was revoked while it was being exchanged"
                )
            if not session.active:
                raise OAuthError("invalid_grant", "the session of this grant has ended")
            if offline:
                self._refresh[refresh] = RefreshToken(
                    client_id=self.client.client_id,
                    session=session,
                    scope=scope,
                    expires_at=time.time() + self.lifetimes.refresh_token,
                    family=family,
                )
        if offline:
            response["refresh_token"] = refresh
        return response

    def _common_claims(self, session: Session, user: Any, lifetime: int) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [self.client.client_id],
            "sub": user.id,
            "sid": session.sid,
            "client_id": self.client.client_id,
            "iat": now - 1,
            "exp": now + lifetime,
        }
        if session.organization_id:
            claims["oid"] = session.organization_id
            org = self.directory.get_organization(session.organization_id)
            if org is not None and org.HasField("external_id"):
                claims["xoid"] = org.external_id
        if user.HasField("external_id"):
            claims["xuid"] = user.external_id
        return claims

    def mint_access_token(self, session: Session, user: Any, scope: str) -> str:
        claims = self._common_claims(session, user, self.lifetimes.access_token)
        roles = (
            self.directory.effective_roles(user.id, session.organization_id)
            if session.organization_id
            else []
        )
        claims.update(
            {
                "nbf": claims["iat"],
                "jti": ids.new_id("tkn"),
                "roles": roles,
                "permissions": self.directory.permissions_for_roles(roles),
                "scope": scope,
            }
        )
        return self.keys.sign(claims)

    def mint_id_token(
        self, session: Session, user: Any, nonce: str, access_token: str, code: str | None
    ) -> str:
        profile = user.user_profile
        claims = self._common_claims(session, user, self.lifetimes.id_token)
        name = profile.name or " ".join(p for p in (profile.given_name, profile.family_name) if p)
        claims.update(
            {
                "azp": self.client.client_id,
                "amr": [session.connection_id],
                "email": user.email,
                "email_verified": bool(profile.email_verified),
                "name": name,
                "given_name": profile.given_name,
                "family_name": profile.family_name,
                "at_hash": _b64url_sha256_half(access_token),
            }
        )
        # Profile claims Scalekit sends when the profile has them (wire doc 3.1).
        for claim in ("picture", "locale", "preferred_username"):
            if getattr(profile, claim):
                claims[claim] = getattr(profile, claim)
        if code:
            claims["c_hash"] = _b64url_sha256_half(code)
        if nonce:
            claims["nonce"] = nonce
        return self.keys.sign(claims)

    # -- logout and IdP-initiated login ----------------------------------------------------

    def logout(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        """End the session named by ``id_token_hint``; return (sid ended, redirect URL or None).

        Raises ``OAuthError`` for an unregistered ``post_logout_redirect_uri`` or a hint that
        was not signed by this environment.
        """
        target = params.get("post_logout_redirect_uri", "")
        if target and target not in self.client.post_logout_redirect_uris:
            raise OAuthError(
                "invalid_request",
                f"post_logout_redirect_uri {target!r} is not registered for this client",
            )
        sid = None
        hint = params.get("id_token_hint", "")
        if hint:
            try:
                claims = self.keys.decode(hint, verify_exp=False)
            except jwt.PyJWTError as exc:
                raise OAuthError("invalid_request", f"id_token_hint is not valid: {exc}") from exc
            sid = claims.get("sid")
        if sid:
            self.end_session(sid)
        redirect = None
        if target:
            redirect = (
                with_query(target, {"state": params["state"]}) if params.get("state") else target
            )
        return sid, redirect

    def end_session(self, sid: str) -> None:
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.active:
                session.active = False
                session.ended_at = time.time()
            self._revoke_session_tokens(sid)

    def idp_initiated_token(
        self,
        *,
        organization_id: str,
        connection_id: str = "",
        login_hint: str = "",
        relay_state: str = "",
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": [self.client.client_id],
            "iat": now - 1,
            "exp": now + 300,
            "organization_id": organization_id,
            "connection_id": connection_id or DEFAULT_CONNECTION_ID,
            "login_hint": login_hint,
        }
        if relay_state:
            claims["relay_state"] = relay_state
        return self.keys.sign(claims)

    def counts(self) -> dict[str, int]:
        return {
            "sessions": sum(1 for s in self._sessions.values() if s.active),
            "codes": len(self._codes),
            "refresh_tokens": len(self._refresh),
        }
