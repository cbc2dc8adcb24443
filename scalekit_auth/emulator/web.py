"""The emulator's HTTP/1.1 side: OAuth/OIDC endpoints, the hosted login page and the control API.

Served by a threading ``http.server`` on a loopback port behind the TLS router, so clients see
it at ``https://<host>:<port>`` like the real environment URL.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from .authserver import OAuthError

if TYPE_CHECKING:
    from .server import Emulator

logger = logging.getLogger("scalekit_auth.emulator")

SESSION_COOKIE = "sk_emulator_session"
CONTROL_PREFIX = "/_emulator/"


class BadRequest(Exception):
    """A request the emulator cannot read (answered 400 with the message)."""


def basic_credentials(header: str) -> tuple[str, str]:
    """The client id and secret of an ``Authorization: Basic`` header, each URL-decoded as
    RFC 6749 section 2.3.1 asks. Raises ``OAuthError`` (401 invalid_client) when malformed."""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(
            "invalid_client", "the Basic authorization header is not base64 of id:secret", 401
        ) from exc
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise OAuthError(
            "invalid_client", "the Basic authorization header has no ':' between id and secret", 401
        )
    return unquote_plus(client_id), unquote_plus(client_secret)


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, Handler)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;color:#1f2937}}
h1{{font-size:1.4rem}} input[type=email]{{width:100%;padding:.5rem;font-size:1rem}}
button{{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}} .error{{color:#b91c1c}}
small{{color:#6b7280}}</style></head>
<body><h1>{title}</h1>{body}<p><small>Scalekit emulator: a local stand-in for the hosted login.</small></p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server: HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "ScalekitEmulator/1"

    # -- plumbing --------------------------------------------------------------------------

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _path(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        path = re.sub("/{2,}", "/", parts.path)  # the SDK joins env_url + "/oauth/token" as text
        return path, dict(parse_qsl(parts.query, keep_blank_values=True))

    def _body(self) -> bytes:
        raw = self.headers.get("content-length") or "0"
        if not raw.isdigit():
            # The rest of the connection cannot be framed: answer, then close it.
            self.close_connection = True
            raise BadRequest(f"content-length {raw!r} is not a number of bytes")
        length = int(raw)
        return self.rfile.read(length) if length else b""

    def _form(self) -> dict[str, str]:
        return dict(parse_qsl(self._body().decode(), keep_blank_values=True))

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _page(
        self, status: int, title: str, body: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(
            status,
            PAGE.format(title=html.escape(title), body=body).encode(),
            "text/html; charset=utf-8",
            headers,
        )

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(HTTPStatus.FOUND, b"", "text/plain", {"location": location, **(headers or {})})

    def _cookie(self, name: str) -> str:
        cookie = SimpleCookie(self.headers.get("cookie", ""))
        return cookie[name].value if name in cookie else ""

    def _faulted(self, path: str) -> bool:
        """Apply injected faults to an HTTP endpoint named in the fault ``methods``."""
        faults = self.emulator.faults
        faults.count(path)
        if path not in faults.config.methods:
            return False
        decision = faults.decide(path)
        if decision.retry_after_s is not None:
            seconds = max(1, int(decision.retry_after_s + 0.999))
            self._json(
                429,
                {"error": "rate_limited", "error_description": "rate limit exceeded"},
                {"retry-after": str(seconds)},
            )
            return True
        if decision.delay_s:
            time.sleep(decision.delay_s)
        if decision.unavailable:
            self._json(503, {"error": "unavailable", "error_description": "injected fault"})
            return True
        return False

    # -- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path, query = self._path()
        try:
            if path.startswith(CONTROL_PREFIX):
                self.emulator.control_api.handle(self, method, path[len(CONTROL_PREFIX) :], query)
                return
            route = ROUTES.get((method, path))
            if route is None:
                self._json(404, {"error": "not_found", "error_description": f"{method} {path}"})
                return
            if self._faulted(path):
                return
            route(self, query)
        except BadRequest as exc:
            self._json(400, {"error": "invalid_request", "error_description": str(exc)})
        except BrokenPipeError:
            pass
        except Exception:
            logger.exception("emulator: %s %s failed", method, path)
            self._json(500, {"error": "server_error", "error_description": "emulator error"})

    # -- OIDC discovery and keys -----------------------------------------------------------

    def discovery(self, query: dict[str, str]) -> None:
        issuer = self.emulator.url
        self._json(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/oauth/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "jwks_uri": f"{issuer}/keys",
                "end_session_endpoint": f"{issuer}/oidc/logout",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "code_challenge_methods_supported": ["S256", "plain"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
            },
        )

    def keys(self, query: dict[str, str]) -> None:
        self._json(200, self.emulator.keys.jwks())

    # -- token endpoint --------------------------------------------------------------------

    def token(self, query: dict[str, str]) -> None:
        form = self._form()
        auth = self.emulator.auth
        try:
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
            basic = self.headers.get("authorization", "")
            if not client_secret and basic.lower().startswith("basic "):
                client_id, client_secret = basic_credentials(basic)
            auth.authenticate_client(client_id, client_secret)
            grant = form.get("grant_type", "")
            if grant == "client_credentials":
                body = auth.client_credentials(form.get("scope", ""))
            elif grant == "authorization_code":
                body = auth.exchange_code(form)
            elif grant == "refresh_token":
                body = auth.refresh(form)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        except OAuthError as exc:
            # RFC 6749 5.2: a 401 names the scheme the client may authenticate with.
            headers = {"www-authenticate": 'Basic realm="scalekit"'} if exc.status == 401 else None
            self._json(exc.status, exc.body(), headers)
            return
        self._json(200, body)

    # -- hosted login ----------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> None:
        auth = self.emulator.auth
        try:
            request = auth.validate_authorize(query)
        except OAuthError as exc:
            self._page(400, exc.error, f"<p class=error>{html.escape(exc.description)}</p>")
            return
        error_redirect = auth.precheck(request)
        if error_redirect:
            self._redirect(error_redirect)
            return
        session = auth.session(self._cookie(SESSION_COOKIE))
        if (
            session
            and request.prompt != "login"
            and (not request.organization_id or request.organization_id == session.organization_id)
        ):
            self._redirect(auth.issue_code(request, session))
            return
        if request.prompt == "none":
            self._redirect(auth.redirect_error(request, "login_required", "no active session"))
            return
        self._login_form(request, request.login_hint)

    def _login_form(self, request: Any, email: str, error: str = "", status: int = 200) -> None:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in request.as_params().items()
        )
        body = (
            (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
            + '<form method="post" action="/oauth/authorize">'
            + hidden
            + '<label for="email">Email</label>'
            + f'<input type="email" id="email" name="email" value="{html.escape(email)}" required autofocus>'
            + '<button type="submit">Continue</button></form>'
        )
        self._page(status, "Sign in", body)

    def authorize_submit(self, query: dict[str, str]) -> None:
        form = self._form()
        auth = self.emulator.auth
        try:
            request = auth.validate_authorize(form)
        except OAuthError as exc:
            self._page(400, exc.error, f"<p class=error>{html.escape(exc.description)}</p>")
            return
        error_redirect = auth.precheck(request)
        if error_redirect:
            self._redirect(error_redirect)
            return
        try:
            session, location = auth.login(request, form.get("email", ""))
        except LookupError as exc:
            self._login_form(request, form.get("email", ""), str(exc), status=200)
            return
        self.emulator.emit_user_event("user.login", session)
        cookie = f"{SESSION_COOKIE}={session.sid}; Path=/; HttpOnly; Secure; SameSite=Lax"
        self._redirect(location, {"set-cookie": cookie})

    # -- logout ----------------------------------------------------------------------------

    def logout(self, query: dict[str, str]) -> None:
        auth = self.emulator.auth
        try:
            sid, location = auth.logout(query)
        except OAuthError as exc:
            self._page(400, exc.error, f"<p class=error>{html.escape(exc.description)}</p>")
            return
        cookie_sid = self._cookie(SESSION_COOKIE)
        if cookie_sid and cookie_sid != sid:
            auth.end_session(cookie_sid)
        clear = {
            "set-cookie": f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        }
        if sid:
            self.emulator.emit_logout(sid)
        if location:
            self._redirect(location, clear)
        else:
            self._page(200, "Signed out", "<p>You have been signed out.</p>", clear)


ROUTES = {
    ("GET", "/.well-known/openid-configuration"): Handler.discovery,
    ("GET", "/keys"): Handler.keys,
    ("POST", "/oauth/token"): Handler.token,
    ("GET", "/oauth/authorize"): Handler.authorize,
    ("POST", "/oauth/authorize"): Handler.authorize_submit,
    ("GET", "/oidc/logout"): Handler.logout,
}
