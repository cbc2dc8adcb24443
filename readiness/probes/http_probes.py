"""Kind P: in-process requests through Django's full handler and real middleware stack.

No socket is opened by the probe itself; it uses Django's test ``Client`` with ``secure=True`` and a
host from ``ALLOWED_HOSTS``. The views exercised build Scalekit URLs locally, so none of these probes
needs the network.

These probes run inside the live process (the admin button runs them in a web worker), so what
they touch is put back:

- database rows (a temporary user, a session row) are written in a transaction that is always
  rolled back;
- every session a probe's clients or the probe itself created is deleted from the session store
  afterwards, so a cache-backed store keeps no session of a temporary (superuser) account whose
  primary key a real user may get next;
- the loggers of ``QUIET_LOGGERS`` drop this thread's expected 4xx records while a probe runs;
- a receiver of ``scalekit_auth.signals.token_requested`` (sent by
  ``scalekit_auth.client.token_request()``, through which every code exchange of the project goes)
  is connected while at least one forged-state probe runs (``_ExchangeSpy``); it counts only the
  probing thread's exchanges, and is disconnected when the last such probe ends, whatever the
  interleaving of overlapping runs. Nothing of the SDK is patched.

A view that crashes answers the probe's client with a 500 page, as it would a browser; the
exception it raised (type and message, known secret values masked) is kept in the result's
``server_errors`` evidence and named in its message (``_ServerErrors``), so that a 500 seen once
can be diagnosed from the stored result; the traceback still goes to the ``django.request`` log.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.signals import got_request_exception
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import validate_host
from django.middleware.csrf import get_token
from django.shortcuts import resolve_url
from django.test import Client, RequestFactory

from .. import contract
from ..conf import app_settings
from ..masking import mask_secrets_in
from ..registry import (
    PASS,
    REQUEST,
    SKIP,
    ProbeContext,
    ProbeResult,
    failed,
    passed,
    probe,
    skipped,
    warned,
    worst,
)
from .hosts import hostname, is_public_suffix_catch_all
from .settings import PROBE_ORIGIN

URLSAFE_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
PROBE_MARKER = "readiness_probe_marker"
logger = logging.getLogger(__name__)


QUIET_LOGGERS = ("django.request", "django.security.csrf")


class _ThisThreadBelowError(logging.Filter):
    """Drops this thread's records under ERROR; other threads (real requests) log as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread or record.levelno >= logging.ERROR


class _ThisThreadStatus(logging.Filter):
    """Drops this thread's request records about the given response statuses."""

    def __init__(self, *statuses: int) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.statuses = statuses

    def filter(self, record: logging.LogRecord) -> bool:
        return (
            record.thread != self.thread
            or getattr(record, "status_code", None) not in self.statuses
        )


@contextmanager
def unlogged(name: str, *statuses: int) -> Iterator[None]:
    """Keep the ``statuses`` a probe provokes on purpose (a 503 of an unconfigured view) out of
    logger ``name`` for this thread; other threads and other statuses log as usual."""
    target = logging.getLogger(name)
    log_filter = _ThisThreadStatus(*statuses)
    target.addFilter(log_filter)
    try:
        yield
    finally:
        target.removeFilter(log_filter)


#: At most this many crashes of views are kept per probe result, each message cut to this length.
MAX_SERVER_ERRORS = 5
MAX_ERROR_TEXT = 300


def masked_text(text: str) -> str:
    """``text`` with every secret value of the settings masked (an exception message can quote
    one: a DSN, a header), cut to ``MAX_ERROR_TEXT`` characters."""
    text = mask_secrets_in(text)
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def describe_exception(exc: BaseException) -> str:
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = masked_text(str(exc))
    return f"{name}: {text}" if text else name


class _ServerErrors:
    """The exceptions views raised during this thread's probe requests.

    Django sends ``got_request_exception`` while it turns a view's exception into the 500 page;
    the receiver notes the exception for the probe running in the sending thread (requests of
    other threads, real ones, are left alone). One receiver serves all overlapping probes: the
    first to start connects it, the last to end disconnects it, under a lock.
    """

    _lock = threading.Lock()
    _running = 0
    DISPATCH_UID = "readiness.probes.http_probes.server_errors"

    @staticmethod
    def _received(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        errors = getattr(_probe_state, "server_errors", None)
        exc = sys.exc_info()[1]
        if errors is None or exc is None:
            return
        where = f"{request.method} {request.path}" if request is not None else "a request"
        errors.append(f"{where} raised {describe_exception(exc)}")

    @classmethod
    @contextmanager
    def recorded(cls) -> Iterator[list[str]]:
        outer = getattr(_probe_state, "server_errors", None)
        errors: list[str] = []
        _probe_state.server_errors = errors
        with cls._lock:
            if not cls._running:
                got_request_exception.connect(
                    cls._received, weak=False, dispatch_uid=cls.DISPATCH_UID
                )
            cls._running += 1
        try:
            yield errors
        finally:
            _probe_state.server_errors = outer
            with cls._lock:
                cls._running -= 1
                if not cls._running:
                    got_request_exception.disconnect(dispatch_uid=cls.DISPATCH_UID)


def with_server_errors(result: ProbeResult, errors: list[str]) -> ProbeResult:
    """``result`` with the crashes of views behind it: in its evidence, and, unless it passed, in
    its message."""
    if not errors:
        return result
    kept = errors[:MAX_SERVER_ERRORS]
    evidence = {**(result.evidence or {}), "server_errors": kept}
    message = result.message
    if result.status not in (PASS, SKIP):
        more = f" (and {len(errors) - len(kept)} more)" if len(errors) > len(kept) else ""
        message = f"{message} Server error: {'; '.join(kept)}{more}; traceback in the log."
    return dataclasses.replace(result, message=message, evidence=evidence)


def quiet(func: Callable[[ProbeContext], ProbeResult]) -> Callable[[ProbeContext], ProbeResult]:
    """Keep what a probe provokes on purpose out of the logs: its 404s, 405s and 403s, and the
    auth app's "login failed" for its forged state. Errors (500s) still show, and the exception
    behind a 500 is kept in the result (``with_server_errors``)."""

    @functools.wraps(func)
    def wrapper(ctx: ProbeContext) -> ProbeResult:
        names = (*QUIET_LOGGERS, app_settings.AUTH_LOGGER)
        loggers = [logging.getLogger(name) for name in names]
        log_filter = _ThisThreadBelowError()
        for quieted in loggers:
            quieted.addFilter(log_filter)
        try:
            with cleaned_sessions(), _ServerErrors.recorded() as errors:
                result = func(ctx)
            return with_server_errors(result, errors)
        finally:
            for quieted in loggers:
                quieted.removeFilter(log_filter)

    return wrapper


def request_probe(id: str, **kwargs: Any) -> Callable[[Callable], Callable]:
    """``probe(..., kind=REQUEST)`` for a function whose expected errors are not logged."""

    def decorator(
        func: Callable[[ProbeContext], ProbeResult],
    ) -> Callable[[ProbeContext], ProbeResult]:
        probe(id, kind=REQUEST, **kwargs)(quiet(func))
        return func

    return decorator


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a transaction that is always rolled back."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def probe_host() -> str:
    """A host name Django accepts: the public URL's, else the first usable ALLOWED_HOSTS entry."""
    if app_settings.PUBLIC_URL:
        return hostname(app_settings.PUBLIC_URL)
    for host in settings.ALLOWED_HOSTS:
        if host == "*" or is_public_suffix_catch_all(host):
            continue
        return host.lstrip(".") or "localhost"
    return "localhost"


_probe_state = threading.local()


def _tracked() -> tuple[list[Client], set[str]] | None:
    return getattr(_probe_state, "tracked", None)


@contextmanager
def cleaned_sessions() -> Iterator[None]:
    """Delete every session the clients made in the block (and ``track_session`` keys) after it."""
    outer = _tracked()
    _probe_state.tracked = ([], set())
    try:
        yield
    finally:
        clients, keys = _probe_state.tracked
        _probe_state.tracked = outer
        for client in clients:
            cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
            if cookie is not None and cookie.value:
                keys.add(cookie.value)
        for key in keys:
            try:
                session_store(key).delete()
            except Exception:
                logger.exception("readiness could not delete a probe session")


def track_session(key: str | None) -> None:
    tracked = _tracked()
    if tracked is not None and key:
        tracked[1].add(key)


def make_client(**kwargs: Any) -> Client:
    """A test client as a browser would be: a crashing view is a 500 page, not an exception."""
    kwargs.setdefault("raise_request_exception", False)
    client = Client(HTTP_HOST=probe_host(), **kwargs)
    tracked = _tracked()
    if tracked is not None:
        tracked[0].append(client)
    return client


def session_store(key: str | None = None) -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore(key)


def _flatten(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _flatten(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from _flatten(v)
    elif value is not None:
        yield str(value)


def session_values(client: Client) -> list[str]:
    key = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if key is None or not key.value:
        return []
    store = session_store(key.value)
    return list(_flatten(dict(store.items())))


def _location(response: HttpResponse) -> str:
    return response.get("Location", "")


def _is_redirect(response: HttpResponse) -> bool:
    return response.status_code in (301, 302, 303, 307, 308)


def _env_netloc() -> str:
    return urlsplit(contract.scalekit_setting("ENVIRONMENT_URL") or "").netloc


# --- A. Quick checks ---------------------------------------------------------------------------


@request_probe(
    "readiness.E041",
    item="A05",
    title="Proxy header makes requests secure",
    reads=("SECURE_PROXY_SSL_HEADER", "READINESS.BEHIND_TLS_PROXY"),
)
def proxy_header_honoured(ctx: ProbeContext) -> ProbeResult:
    if not app_settings.BEHIND_TLS_PROXY:
        return skipped("Not behind a TLS proxy (READINESS['BEHIND_TLS_PROXY'] is False).")
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not header or len(header) != 2:
        return failed(
            "SECURE_PROXY_SSL_HEADER is not set: behind the proxy every request looks like http."
        )
    factory = RequestFactory()
    forwarded = factory.get("/", HTTP_HOST=probe_host(), **{header[0]: header[1]})
    spoofed = factory.get("/", HTTP_HOST=probe_host(), **{header[0]: "http"})
    if not forwarded.is_secure():
        return failed(f"A request with {header[0]}={header[1]} is not seen as secure.")
    if spoofed.is_secure():
        return failed(f"A request with {header[0]}=http is seen as secure.")
    return passed(f"{header[0]}={header[1]} makes request.is_secure() true, and only that value.")


@request_probe(
    "readiness.E042",
    item="A07",
    title="CORS preflight from a foreign origin refused",
    reads=("MIDDLEWARE",),
)
def cors_preflight(ctx: ProbeContext) -> ProbeResult:
    path = contract.url_path(contract.LOGIN_URL_NAME) or "/"
    response = make_client().options(
        path, secure=True, HTTP_ORIGIN=PROBE_ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    allowed = response.get("Access-Control-Allow-Origin")
    evidence = {"path": path, "status": response.status_code, "allow_origin": allowed}
    if allowed in ("*", PROBE_ORIGIN):
        return failed(
            f"A preflight from {PROBE_ORIGIN} got Access-Control-Allow-Origin: {allowed}.",
            evidence=evidence,
        )
    return passed(
        f"A preflight from {PROBE_ORIGIN} got no Access-Control-Allow-Origin.", evidence=evidence
    )


# --- B. Core flows -------------------------------------------------------------------------------


def _cookie_findings(response: HttpResponse, name: str, label: str) -> list[ProbeResult]:
    cookie = response.cookies.get(name)
    if cookie is None:
        return [failed(f"the {label} cookie {name!r} was not set by the middleware")]
    findings = []
    if not cookie["secure"]:
        findings.append(failed(f"the {label} cookie is sent without Secure"))
    if label == "session" and not cookie["httponly"]:
        findings.append(failed("the session cookie is readable by JavaScript (no HttpOnly)"))
    if str(cookie["samesite"]).lower() != "lax":
        findings.append(failed(f"the {label} cookie has SameSite={cookie['samesite'] or 'unset'}"))
    return findings


@request_probe(
    "readiness.E043",
    item="B01",
    title="Session and CSRF cookies on the wire",
    reads=(
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_SAMESITE",
        "CSRF_USE_SESSIONS",
    ),
    asvs="3.4.1",
)
def cookies_on_the_wire(ctx: ProbeContext) -> ProbeResult:
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.middleware.csrf import CsrfViewMiddleware

    def view(request: HttpRequest) -> HttpResponse:
        request.session[PROBE_MARKER] = "1"
        get_token(request)
        return HttpResponse("ok")

    request = RequestFactory().get("/", secure=True, HTTP_HOST=probe_host())
    handler = SessionMiddleware(CsrfViewMiddleware(view))
    with rolled_back():
        response = handler(request)
    track_session(request.session.session_key)
    findings = _cookie_findings(response, settings.SESSION_COOKIE_NAME, "session")
    if not settings.CSRF_USE_SESSIONS:
        findings += _cookie_findings(response, settings.CSRF_COOKIE_NAME, "CSRF")
    headers = [str(c.output(header="")).strip() for c in response.cookies.values()]
    redacted = [re.sub(r"=[^;]*", "=…", h, count=1) for h in headers]
    return worst(
        findings,
        "Session and CSRF cookies are sent Secure, HttpOnly and SameSite=Lax.",
        evidence={"set_cookie": redacted},
    )


def _login(
    ctx: ProbeContext, query: dict[str, str] | None = None
) -> tuple[Client, HttpResponse] | ProbeResult:
    path = contract.url_path(contract.LOGIN_URL_NAME)
    if path is None:
        return failed(f"login view {contract.LOGIN_URL_NAME} is not installed.")
    client = make_client()
    response = client.get(path, query or {}, secure=True)
    if not _is_redirect(response):
        return failed(
            f"GET {path} answered {response.status_code}, not a redirect to Scalekit.",
            evidence={"status": response.status_code},
        )
    return client, response


@request_probe(
    "readiness.E044",
    item="B10",
    title="Login sends a strong state and PKCE",
    reads=("SCALEKIT_AUTH.REDIRECT_URI", "SCALEKIT_AUTH.ENVIRONMENT_URL"),
    asvs="2.1.1",
)
def login_state_and_pkce(ctx: ProbeContext) -> ProbeResult:
    with rolled_back():
        outcome = _login(ctx)
        if isinstance(outcome, ProbeResult):
            return outcome
        client, response = outcome
        stored = session_values(client)
    location = urlsplit(_location(response))
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    evidence = {
        "authorize_host": location.netloc,
        "authorize_path": location.path,
        "parameters": sorted(query),
        "state_length": len(query.get("state", "")),
        "code_challenge_method": query.get("code_challenge_method", ""),
    }
    findings = []
    if location.netloc != _env_netloc() or location.path != "/oauth/authorize":
        findings.append(
            failed(
                f"login redirects to {location.netloc}{location.path}, not to "
                f"{_env_netloc()}/oauth/authorize"
            )
        )
    state = query.get("state", "")
    if len(state) < 32 or not URLSAFE_RE.match(state):
        findings.append(
            failed(f"the state has {len(state)} characters; 32 or more URL-safe ones are needed")
        )
    elif state not in stored:
        findings.append(failed("the state is not kept in the server-side session"))
    if query.get("redirect_uri") != contract.scalekit_setting("REDIRECT_URI"):
        configured = contract.scalekit_setting("REDIRECT_URI") or "(empty)"
        findings.append(
            failed(
                f"redirect_uri {query.get('redirect_uri') or '(none)'} differs from "
                f"SCALEKIT_AUTH['REDIRECT_URI'] {configured}"
            )
        )
    if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
        findings.append(failed("no S256 PKCE code_challenge is sent"))
    if not query.get("nonce"):
        findings.append(warned("no nonce is sent"))
    return worst(
        findings,
        "Login sends a 32+ character state kept in the session, an S256 PKCE "
        "challenge and the exact redirect_uri.",
        evidence=evidence,
    )


class _ExchangeSpy:
    """Counts authorization-code exchanges this thread makes during a probe.

    Every exchange of the project goes through ``scalekit_auth.client.token_request()``, which
    sends ``token_requested`` first. One receiver is connected for all overlapping probes
    (threads of the web server or of Celery): the first spy connects it, the last one out
    disconnects it, under a lock. Exchanges of threads without a spy are not counted.
    """

    _lock = threading.Lock()
    _active: dict[int, list[_ExchangeSpy]] = {}
    DISPATCH_UID = "readiness.probes.http_probes.exchange_spy"

    def __init__(self) -> None:
        self.calls = 0
        self.thread = threading.get_ident()

    @classmethod
    def _received(cls, sender: Any, grant_type: str = "", **kwargs: Any) -> None:
        if grant_type == "authorization_code":
            with cls._lock:
                for spy in cls._active.get(threading.get_ident(), ()):
                    spy.calls += 1

    @contextmanager
    def installed(self) -> Iterator[_ExchangeSpy]:
        from scalekit_auth.signals import token_requested

        cls = type(self)
        with cls._lock:
            if not cls._active:
                token_requested.connect(cls._received, weak=False, dispatch_uid=cls.DISPATCH_UID)
            cls._active.setdefault(self.thread, []).append(self)
        try:
            yield self
        finally:
            with cls._lock:
                mine = cls._active.get(self.thread, [])
                if self in mine:
                    mine.remove(self)
                if not mine:
                    cls._active.pop(self.thread, None)
                if not cls._active:
                    token_requested.disconnect(dispatch_uid=cls.DISPATCH_UID)


TOKEN_KEY_RE = re.compile(r"(access|refresh|id)_?token", re.IGNORECASE)


@request_probe(
    "readiness.E045",
    item="B11",
    title="Callback rejects a forged state",
    reads=("ROOT_URLCONF",),
    asvs="4.2.2",
)
def callback_rejects_forged_state(ctx: ProbeContext) -> ProbeResult:
    path = contract.url_path(contract.CALLBACK_URL_NAME)
    if path is None:
        return failed(f"callback view {contract.CALLBACK_URL_NAME} is not installed.")
    forged = "forged-" + secrets.token_urlsafe(16)
    with rolled_back(), _ExchangeSpy().installed() as spy:
        client = make_client()
        response = client.get(path, {"code": "readiness-probe", "state": forged}, secure=True)
        key = client.cookies.get(settings.SESSION_COOKIE_NAME)
        session = dict(session_store(key.value).items()) if key is not None and key.value else {}
    evidence = {"status": response.status_code, "exchange_calls": spy.calls}
    findings = []
    if spy.calls:
        findings.append(failed("the code was exchanged although the state was forged"))
    if "_auth_user_id" in session:
        findings.append(failed("a forged state logged a user in"))
    if any(TOKEN_KEY_RE.search(k) for k in _flatten(list(session))):
        findings.append(failed("a forged state left tokens in the session"))
    login_path = contract.url_path(contract.LOGIN_URL_NAME)
    if _is_redirect(response):
        target = urlsplit(_location(response)).path
        if login_path and target == login_path:
            findings.append(
                warned("a forged state redirects to login again instead of showing an error")
            )
        else:
            findings.append(failed(f"a forged state redirects to {target or '/'}"))
    elif not 400 <= response.status_code < 500:
        findings.append(
            failed(f"a forged state answered {response.status_code}; a 4xx is expected")
        )
    return worst(
        findings,
        f"A forged state gets {response.status_code}, no login, no token, no code exchange.",
        evidence=evidence,
    )


@request_probe(
    "readiness.E046",
    item="B12",
    title="Logout clears everything",
    reads=("SCALEKIT_AUTH.POST_LOGOUT_REDIRECT_URI", "ALLOWED_HOSTS"),
    asvs="3.3.1",
)
def logout_clears_session(ctx: ProbeContext) -> ProbeResult:
    path = contract.url_path(contract.LOGOUT_URL_NAME)
    if path is None:
        return failed(f"logout view {contract.LOGOUT_URL_NAME} is not installed.")
    findings = []
    with rolled_back():
        store = session_store()
        store[PROBE_MARKER] = secrets.token_hex(8)
        store.create()
        old_key = store.session_key
        track_session(old_key)
        client = make_client()
        client.cookies[settings.SESSION_COOKIE_NAME] = old_key
        via_get = client.get(path, secure=True)
        if session_store().exists(old_key) is False:
            findings.append(failed("GET on the logout URL ends the session; logout must be POST"))
            store = session_store()
            store[PROBE_MARKER] = "again"
            store.create()
            old_key = store.session_key
            track_session(old_key)
            client.cookies[settings.SESSION_COOKIE_NAME] = old_key
        elif via_get.status_code != 405:
            findings.append(
                warned(f"GET on the logout URL answered {via_get.status_code}, not 405")
            )
        response = client.post(path, secure=True)
        still_there = session_store().exists(old_key)
    evidence = {"status": response.status_code}
    if still_there:
        findings.append(failed("the old session still exists after logout"))
    cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is None or (cookie.value == old_key):
        findings.append(failed("the response does not remove the session cookie"))
    location = urlsplit(_location(response))
    evidence["location_host"] = location.netloc
    evidence["location_path"] = location.path
    if not _is_redirect(response):
        findings.append(failed(f"logout answered {response.status_code}, not a redirect"))
    elif location.netloc == _env_netloc() and location.path == "/oidc/logout":
        target = parse_qs(location.query).get("post_logout_redirect_uri", [""])[0]
        parts = urlsplit(target)
        host = parts.hostname or ""
        if parts.scheme != "https" or not validate_host(host, settings.ALLOWED_HOSTS):
            findings.append(
                failed(
                    f"post_logout_redirect_uri {target or '(none)'} is not https on an allowed host"
                )
            )
    elif location.netloc and not validate_host(location.hostname or "", settings.ALLOWED_HOSTS):
        # The probe's session holds no Scalekit tokens, so a local redirect is right; off-site is not.
        findings.append(failed(f"logout redirects off-site to {location.netloc}"))
    return worst(
        findings,
        "Logout deletes the session and its cookie"
        + (" and ends the Scalekit session." if location.path == "/oidc/logout" else "."),
        evidence=evidence,
    )


def _protected_urls() -> list[tuple[str, str | None]]:
    entries = []
    for entry in app_settings.PROTECTED_URLS:
        if isinstance(entry, str):
            entries.append((entry, None))
        else:
            path, permission = (list(entry) + [None])[:2]
            entries.append((path, permission))
    return entries


def _temporary_user(**kwargs: Any) -> Any:
    user_model = get_user_model()
    username = "readiness-probe-" + secrets.token_hex(4)
    fields = {user_model.USERNAME_FIELD: username}
    if user_model.USERNAME_FIELD != "email" and hasattr(user_model, "email"):
        fields["email"] = f"{username}@readiness-probe.invalid"
    user = user_model(**fields, **kwargs)
    user.set_unusable_password()
    user.save()
    return user


def _backend() -> str:
    model_backend = "django.contrib.auth.backends.ModelBackend"
    backends = list(settings.AUTHENTICATION_BACKENDS)
    return model_backend if model_backend in backends else backends[0]


NO_PROTECTED_URLS = failed(
    "READINESS['PROTECTED_URLS'] lists no page, so nothing proves it.",
    hint="List the pages that need a login as (path, permission).",
)


def _log_in(client: Any, user: Any) -> None:
    """Log ``client`` in as ``user``: as a Scalekit session (claims in the session, so views
    reading ``request.scalekit`` see a caller) when scalekit_auth's backend is in
    AUTHENTICATION_BACKENDS, else plainly."""
    if apps.is_installed("scalekit_auth"):
        from scalekit_auth.backends import scalekit_backend_path
        from scalekit_auth.impersonation import impersonate

        backend = scalekit_backend_path()
        if backend is not None:
            impersonate(client, user, backend=backend, organization_id="org_readiness_probe")
            return
    client.force_login(user, backend=_backend())


@request_probe(
    "readiness.E047",
    item="B13",
    title="Authenticated pages not cached",
    reads=("READINESS.PROTECTED_URLS",),
    asvs="8.2.1",
)
def no_caching_of_protected_pages(ctx: ProbeContext) -> ProbeResult:
    urls = _protected_urls()
    if not urls:
        return NO_PROTECTED_URLS
    findings, evidence = [], {}
    with rolled_back():
        client = make_client()
        _log_in(client, _temporary_user(is_staff=True, is_superuser=True))
        for path, _ in urls:
            response = client.get(path, secure=True)
            cache_control = response.get("Cache-Control", "")
            evidence[path] = {"status": response.status_code, "cache_control": cache_control}
            if response.status_code != 200:
                findings.append(failed(f"{path} answered {response.status_code} to a superuser"))
            elif "no-store" not in cache_control and "private" not in cache_control:
                findings.append(
                    failed(f"{path} is cacheable (Cache-Control: {cache_control or 'none'})")
                )
    return worst(
        findings,
        f"{len(urls)} protected page(s) send Cache-Control no-store or private.",
        evidence=evidence,
        hint="Wrap the views in never_cache.",
    )


@request_probe(
    "readiness.E048",
    item="B14",
    title="Login ignores an off-site next",
    reads=("ALLOWED_HOSTS",),
    asvs="5.1.5",
)
def open_redirect_guarded(ctx: ProbeContext) -> ProbeResult:
    evil = "https://evil.invalid/steal"
    with rolled_back():
        outcome = _login(ctx, {"next": evil})
        if isinstance(outcome, ProbeResult):
            return outcome
        client, response = outcome
        stored = session_values(client)
    if any("evil.invalid" in value for value in stored):
        return failed(
            "The login view stored next=https://evil.invalid in the session: after login "
            "the user would be sent off-site."
        )
    if "evil.invalid" in _location(response):
        return failed("The login redirect carries the off-site next URL.")
    return passed("An off-site next is dropped before it reaches the session.")


CSP_HEADER = "Content-Security-Policy"
CSP_REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"


def _csp_finding(label: str, response: HttpResponse) -> ProbeResult:
    if response.get(CSP_HEADER):
        return passed(f"{label} sends {CSP_HEADER}")
    if response.get(CSP_REPORT_ONLY_HEADER):
        return warned(
            f"{label} sends only {CSP_REPORT_ONLY_HEADER}: the policy is reported, not enforced"
        )
    return failed(f"{label} sends no {CSP_HEADER} header")


@request_probe(
    "readiness.W064",
    item="B16",
    title="Login and protected pages send a Content-Security-Policy",
    reads=("SECURE_CSP", "CONTENT_SECURITY_POLICY", "MIDDLEWARE", "READINESS.PROTECTED_URLS"),
    asvs="14.4.3",
)
def csp_header_sent(ctx: ProbeContext) -> ProbeResult:
    """B16 on the wire: W015 reads the settings, this proves the header reaches the pages.

    A policy in settings that no middleware sends (``SECURE_CSP`` before Django 6, django-csp's
    ``CONTENT_SECURITY_POLICY`` without its middleware) fails here. The login answer is checked
    whatever it is (a redirect to Scalekit, or the rollout's e-mail page), and so is the first
    page of ``READINESS['PROTECTED_URLS']``, requested by a logged-in superuser.
    """
    login_path = contract.url_path(contract.LOGIN_URL_NAME)
    if login_path is None:
        return failed(f"login view {contract.LOGIN_URL_NAME} is not installed.")
    protected = _protected_urls()
    with rolled_back():
        pages = [(f"the login page {login_path}", make_client().get(login_path, secure=True))]
        if protected:
            path = protected[0][0]
            member = make_client()
            _log_in(member, _temporary_user(is_staff=True, is_superuser=True))
            pages.append((f"the protected page {path}", member.get(path, secure=True)))
    evidence = {
        label: {
            "status": response.status_code,
            "csp": response.get(CSP_HEADER, ""),
            "csp_report_only": response.get(CSP_REPORT_ONLY_HEADER, ""),
        }
        for label, response in pages
    }
    checked = " and ".join(label for label, _ in pages)
    verb = "send" if len(pages) > 1 else "sends"
    ok = f"{checked[0].upper()}{checked[1:]} {verb} a {CSP_HEADER} header."
    if not protected:
        ok += " READINESS['PROTECTED_URLS'] lists no page to check as well."
    return worst(
        [_csp_finding(label, response) for label, response in pages],
        ok,
        evidence=evidence,
        hint="Send the policy with a middleware: django-csp's CSPMiddleware "
        "(CONTENT_SECURITY_POLICY), or Django 6's ContentSecurityPolicyMiddleware (SECURE_CSP).",
    )


# --- C. Enterprise -------------------------------------------------------------------------------


def _row_counts() -> dict[str, int]:
    counts = {"users": get_user_model().objects.count()}
    identity = contract.get_model("scalekit_auth", "ScalekitIdentity")
    if identity is not None:
        counts["identities"] = identity.objects.count()
    return counts


@request_probe(
    "readiness.E049",
    item="C02",
    title="Webhook rejects unsigned calls",
    reads=("SCALEKIT_AUTH.WEBHOOK_SECRET",),
)
def webhook_rejects_unsigned(ctx: ProbeContext) -> ProbeResult:
    path = contract.url_path(contract.WEBHOOK_URL_NAME)
    if path is None:
        return failed(f"webhook view {contract.WEBHOOK_URL_NAME} is not installed.")
    body = (
        '{"spec_version":"1","id":"evt_readinessprobe","type":"user.organization_membership_'
        'deleted","object":"OrgMembership","data":{}}'
    )
    attempts = {
        "unsigned": {},
        "bad signature": {
            "HTTP_WEBHOOK_ID": "msg_readinessprobe",
            "HTTP_WEBHOOK_TIMESTAMP": str(int(time.time())),
            "HTTP_WEBHOOK_SIGNATURE": "v1,aW52YWxpZC1zaWduYXR1cmU=",
        },
    }
    findings, evidence = [], {}
    # An unconfigured webhook secret answers 503, which django.request logs at ERROR.
    with rolled_back(), unlogged("django.request", 503):
        before = _row_counts()
        client = make_client(enforce_csrf_checks=True)
        for label, headers in attempts.items():
            response = client.post(
                path, body, content_type="application/json", secure=True, **headers
            )
            evidence[label] = response.status_code
            if response.status_code == 403:
                findings.append(failed(f"the {label} call got 403: is the view CSRF exempt?"))
            elif response.status_code not in (400, 401):
                findings.append(failed(f"the {label} call got {response.status_code}, not 400/401"))
        after = _row_counts()
    if after != before:
        findings.append(failed(f"rejected calls still changed rows: {before} -> {after}"))
    return worst(
        findings,
        "Unsigned and wrongly signed webhook calls get 400/401 and change nothing.",
        evidence=evidence,
    )


@request_probe(
    "readiness.E050",
    item="C03",
    title="Webhook view accepts POST only",
    reads=("ROOT_URLCONF",),
)
def webhook_post_only(ctx: ProbeContext) -> ProbeResult:
    path = contract.url_path(contract.WEBHOOK_URL_NAME)
    if path is None:
        return failed(f"webhook view {contract.WEBHOOK_URL_NAME} is not installed.")
    with rolled_back():
        client = make_client()
        statuses = {
            method: getattr(client, method)(path, secure=True).status_code
            for method in ("get", "put")
        }
    wrong = {m: s for m, s in statuses.items() if s != 405}
    if wrong:
        return failed(
            "The webhook view answers "
            + ", ".join(f"{m.upper()} with {s}" for m, s in wrong.items())
            + "; only POST is allowed.",
            evidence=statuses,
        )
    return passed("The webhook view answers 405 to everything but POST.", evidence=statuses)


@request_probe(
    "readiness.E051",
    item="C04",
    title="Admin-portal link view protected",
    reads=("READINESS.ADMIN_PORTAL_URL_NAME",),
)
def admin_portal_protected(ctx: ProbeContext) -> ProbeResult:
    name = app_settings.ADMIN_PORTAL_URL_NAME
    if not name:
        return skipped("No admin-portal link view (READINESS['ADMIN_PORTAL_URL_NAME'] is empty).")
    path = contract.url_path(name)
    if path is None:
        return failed(f"admin-portal view {name} is not installed.")
    env_host = hostname(contract.scalekit_setting("ENVIRONMENT_URL") or "") or "scalekit"
    findings, evidence = [], {}
    with rolled_back():
        anonymous = make_client().get(path, secure=True)
        member = make_client()
        _log_in(member, _temporary_user())
        plain = member.get(path, secure=True)
    for label, response in (("anonymous", anonymous), ("non-admin", plain)):
        evidence[label] = response.status_code
        if response.status_code not in (302, 401, 403):
            findings.append(failed(f"an {label} request got {response.status_code}"))
        if env_host in response.content.decode(errors="replace") or env_host in _location(response):
            findings.append(failed(f"an {label} request received a portal link"))
    return worst(
        findings, "Anonymous and non-admin requests get no portal link.", evidence=evidence
    )


# --- D. RBAC ---------------------------------------------------------------------------------------


def _to_login(response: HttpResponse) -> bool:
    if not _is_redirect(response):
        return False
    target = urlsplit(_location(response)).path
    candidates = {
        urlsplit(str(resolve_url(settings.LOGIN_URL))).path,
        contract.url_path(contract.LOGIN_URL_NAME),
    }
    return target in {c for c in candidates if c}


@request_probe(
    "readiness.E052",
    item="D01",
    title="Protected URLs enforced",
    reads=("READINESS.PROTECTED_URLS", "LOGIN_URL"),
    asvs="4.1.1",
)
def protected_urls_enforced(ctx: ProbeContext) -> ProbeResult:
    urls = _protected_urls()
    if not urls:
        return NO_PROTECTED_URLS
    findings, evidence = [], {}
    with rolled_back():
        member = make_client()
        _log_in(member, _temporary_user())
        for path, permission in urls:
            anonymous = make_client().get(path, secure=True)
            row = {"anonymous": anonymous.status_code}
            if not (_to_login(anonymous) or anonymous.status_code in (401, 403)):
                findings.append(
                    failed(
                        f"{path} answered {anonymous.status_code} to an anonymous "
                        "request, not a redirect to login"
                    )
                )
            if permission:
                lacking = member.get(path, secure=True)
                row["without_permission"] = lacking.status_code
                if lacking.status_code != 403:
                    findings.append(
                        failed(
                            f"{path} answered {lacking.status_code} to a user without "
                            f"{permission}, not 403"
                        )
                    )
            evidence[path] = row
    return worst(
        findings,
        f"{len(urls)} protected URL(s) refuse anonymous users and users without the permission.",
        evidence=evidence,
    )


# --- Error handling --------------------------------------------------------------------------------

DEBUG_MARKERS = (
    "Using the URLconf defined in",
    "Traceback",
    "DEBUG = True",
    "technical_404",
    "settings.py",
    "SECRET_KEY",
)


@request_probe(
    "readiness.E053",
    item="EH1",
    title="Error pages leak nothing",
    reads=("DEBUG",),
    asvs="7.4.1",
)
def error_pages_leak_nothing(ctx: ProbeContext) -> ProbeResult:
    path = f"/readiness-probe-{secrets.token_hex(6)}/"
    response = make_client().get(path, secure=True)
    body = response.content.decode(errors="replace")
    leaks = [marker for marker in DEBUG_MARKERS if marker in body]
    evidence = {"status": response.status_code, "leaks": leaks}
    if leaks:
        return failed(
            f"The 404 page shows debug information ({', '.join(leaks)}).", evidence=evidence
        )
    if response.status_code != 404:
        return failed(
            f"An unknown URL answered {response.status_code}, not 404.", evidence=evidence
        )
    return passed("An unknown URL gets a plain 404 page.", evidence=evidence)
