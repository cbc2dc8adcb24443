"""Kind S: probes that read Django settings only. They also run as Django system checks."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.http.request import validate_host
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

from .. import contract
from ..conf import app_settings
from ..masking import mask_identifier, mask_secret
from ..registry import (
    SETTINGS,
    ProbeContext,
    ProbeResult,
    failed,
    passed,
    probe,
    skipped,
    warned,
    worst,
)
from .hosts import hostname, is_ip, is_local, is_public_suffix_catch_all

PLACEHOLDER_RE = re.compile(
    r"^(your[_-]|<.*>$|change[-_ ]?me|changeme|placeholder|xxx+|todo|replace[-_ ]?me|example)",
    re.IGNORECASE,
)
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
PROBE_ORIGIN = "https://readiness-probe.invalid"
SECRET_KEYS = ("CLIENT_SECRET", "WEBHOOK_SECRET")


def _sk(key: str) -> str:
    return f"SCALEKIT_AUTH['{key}']"


# --- A. Quick checks ---------------------------------------------------------------------------


@probe(
    "readiness.E001",
    item="A03",
    title="ALLOWED_HOSTS pinned",
    kind=SETTINGS,
    reads=("ALLOWED_HOSTS",),
)
def allowed_hosts_pinned(ctx: ProbeContext) -> ProbeResult:
    hosts = list(settings.ALLOWED_HOSTS)
    evidence = {"ALLOWED_HOSTS": hosts}
    if not hosts:
        return failed(
            "ALLOWED_HOSTS is empty.", hint="List the site's host names.", evidence=evidence
        )
    findings = []
    for host in hosts:
        if host == "*":
            findings.append(failed("ALLOWED_HOSTS contains '*': any Host header is accepted"))
        elif is_public_suffix_catch_all(host):
            findings.append(failed(f"ALLOWED_HOSTS entry {host!r} matches a whole public suffix"))
        elif is_local(host.lstrip(".")):
            findings.append(warned(f"ALLOWED_HOSTS entry {host!r} is a local address"))
    return worst(
        findings,
        f"ALLOWED_HOSTS pins {len(hosts)} host(s).",
        evidence=evidence,
        observed=", ".join(hosts),
        expected="named hosts, no '*' or public-suffix catch-all",
    )


@probe(
    "readiness.E002",
    item="A05",
    title="Proxy TLS header set when behind a TLS proxy",
    kind=SETTINGS,
    reads=("SECURE_PROXY_SSL_HEADER", "READINESS.BEHIND_TLS_PROXY"),
)
def proxy_ssl_header(ctx: ProbeContext) -> ProbeResult:
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    evidence = {
        "SECURE_PROXY_SSL_HEADER": repr(header),
        "BEHIND_TLS_PROXY": app_settings.BEHIND_TLS_PROXY,
    }
    if not app_settings.BEHIND_TLS_PROXY:
        if header:
            return warned(
                "SECURE_PROXY_SSL_HEADER is set but READINESS['BEHIND_TLS_PROXY'] is False: "
                "unless a proxy strips the header, a client can claim https.",
                hint="Set READINESS['BEHIND_TLS_PROXY'] = True if a proxy terminates TLS.",
                evidence=evidence,
            )
        return passed(
            "Django terminates TLS itself; no proxy header is trusted.", evidence=evidence
        )
    valid = (
        isinstance(header, tuple | list)
        and len(header) == 2
        and all(isinstance(part, str) for part in header)
        and header[0].startswith("HTTP_")
        and header[1].lower() == "https"
    )
    if not valid:
        return failed(
            f"Behind a TLS proxy, SECURE_PROXY_SSL_HEADER must be a 2-tuple like "
            f"('HTTP_X_FORWARDED_PROTO', 'https'); it is {header!r}.",
            hint="Without it Django sees every request as http and redirects in a loop.",
            evidence=evidence,
        )
    return passed(f"Django trusts {header[0]}={header[1]} from the proxy.", evidence=evidence)


def _setting_alias(*names: str, default: object = None) -> object:
    for name in names:
        if hasattr(settings, name):
            return getattr(settings, name)
    return default


@probe(
    "readiness.E003",
    item="A07",
    title="CORS not open",
    kind=SETTINGS,
    reads=(
        "CORS_ALLOW_ALL_ORIGINS",
        "CORS_ORIGIN_ALLOW_ALL",
        "CORS_ALLOWED_ORIGINS",
        "CORS_ORIGIN_WHITELIST",
        "CORS_ALLOWED_ORIGIN_REGEXES",
        "CORS_ORIGIN_REGEX_WHITELIST",
        "CORS_ALLOW_CREDENTIALS",
        "INSTALLED_APPS",
    ),
)
def cors_not_open(ctx: ProbeContext) -> ProbeResult:
    allow_all = bool(
        _setting_alias("CORS_ALLOW_ALL_ORIGINS", "CORS_ORIGIN_ALLOW_ALL", default=False)
    )
    origins = list(
        _setting_alias("CORS_ALLOWED_ORIGINS", "CORS_ORIGIN_WHITELIST", default=()) or ()
    )
    regexes = list(
        _setting_alias("CORS_ALLOWED_ORIGIN_REGEXES", "CORS_ORIGIN_REGEX_WHITELIST", default=())
        or ()
    )
    credentials = bool(getattr(settings, "CORS_ALLOW_CREDENTIALS", False))
    installed = contract.app_installed("corsheaders")
    evidence = {
        "corsheaders_installed": installed,
        "allow_all": allow_all,
        "allowed_origins": origins,
        "origin_regexes": [str(r) for r in regexes],
        "allow_credentials": credentials,
    }
    if not installed and not (allow_all or origins or regexes):
        return passed(
            "django-cors-headers is not installed: no cross-origin access is granted.",
            evidence=evidence,
        )
    findings = []
    if allow_all and credentials:
        findings.append(
            failed(
                "CORS_ALLOW_ALL_ORIGINS with CORS_ALLOW_CREDENTIALS lets any site make logged-in requests"
            )
        )
    elif allow_all:
        findings.append(failed("CORS_ALLOW_ALL_ORIGINS is True: every origin may read responses"))
    for origin in origins:
        parts = urlsplit(origin)
        if origin == "null":
            findings.append(failed("CORS allows the 'null' origin (sandboxed iframes, file://)"))
        elif parts.scheme != "https":
            findings.append(failed(f"CORS origin {origin!r} is not https"))
        elif is_local(parts.hostname or ""):
            findings.append(failed(f"CORS origin {origin!r} is a local address"))
    for regex in regexes:
        pattern = regex.pattern if hasattr(regex, "pattern") else str(regex)
        if not pattern.startswith("^") or not (pattern.endswith("$") or pattern.endswith(r"\Z")):
            findings.append(failed(f"CORS origin regex {pattern!r} is not anchored with ^...$"))
        elif re.match(pattern, PROBE_ORIGIN):
            findings.append(failed(f"CORS origin regex {pattern!r} matches {PROBE_ORIGIN}"))
    return worst(
        findings,
        f"CORS allows {len(origins)} https origin(s) and {len(regexes)} anchored pattern(s).",
        evidence=evidence,
    )


@probe(
    "readiness.E004",
    item="A08",
    title="CSRF trusted origins https only",
    kind=SETTINGS,
    reads=("CSRF_TRUSTED_ORIGINS",),
)
def csrf_trusted_origins(ctx: ProbeContext) -> ProbeResult:
    origins = list(getattr(settings, "CSRF_TRUSTED_ORIGINS", []))
    findings = []
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme != "https":
            findings.append(failed(f"CSRF trusted origin {origin!r} is not https"))
        elif parts.netloc in ("*", "*."):
            findings.append(failed(f"CSRF trusted origin {origin!r} trusts every host"))
        elif is_local((parts.hostname or "").lstrip("*.")):
            findings.append(failed(f"CSRF trusted origin {origin!r} is a local address"))
    return worst(
        findings,
        f"{len(origins)} CSRF trusted origin(s), all https and public.",
        evidence={"CSRF_TRUSTED_ORIGINS": origins},
    )


def _settings_source() -> tuple[str, str]:
    module = sys.modules.get(
        os.environ.get("DJANGO_SETTINGS_MODULE", "") or settings.SETTINGS_MODULE
    )
    path = getattr(module, "__file__", None) or ""
    try:
        with open(path, encoding="utf-8") as handle:
            return path, handle.read()
    except OSError:
        return path, ""


def credential_findings(key: str, *, secret: bool) -> tuple[list[ProbeResult], str]:
    """What is wrong with one Scalekit credential, and its masked value."""
    value = contract.scalekit_setting(key) or ""
    shown = mask_secret(value) if secret else mask_identifier(value)
    env_names = app_settings.SCALEKIT_SETTING_ALIASES.get(key, [])
    if not value:
        names = " or ".join(env_names) or "the environment"
        return [failed(f"{_sk(key)} is empty; set {names}")], shown
    findings = []
    if PLACEHOLDER_RE.match(str(value)):
        findings.append(failed(f"{_sk(key)} is a placeholder ({shown})"))
    if env_names and not any(os.environ.get(name) == value for name in env_names):
        findings.append(
            failed(
                f"{_sk(key)} does not come from the environment: no {' / '.join(env_names)} "
                "variable holds its value"
            )
        )
    if secret and len(str(value)) >= 8:
        path, source = _settings_source()
        if str(value) in source:
            findings.append(failed(f"{_sk(key)} is written in {os.path.basename(path)}"))
    return findings, shown


@probe(
    "readiness.E005",
    item="A09",
    title="Scalekit credentials from the environment",
    kind=SETTINGS,
    reads=(
        "SCALEKIT_AUTH.ENVIRONMENT_URL",
        "SCALEKIT_AUTH.CLIENT_ID",
        "SCALEKIT_AUTH.CLIENT_SECRET",
    ),
    asvs="2.10.4",
)
def credentials_from_environment(ctx: ProbeContext) -> ProbeResult:
    findings, evidence = [], {}
    for key in ("ENVIRONMENT_URL", "CLIENT_ID", "CLIENT_SECRET"):
        key_findings, shown = credential_findings(key, secret=key in SECRET_KEYS)
        findings += key_findings
        evidence[key] = shown
    return worst(
        findings,
        "Environment URL, client id and secret are set from the environment.",
        evidence=evidence,
        hint="Export SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID and "
        "SCALEKIT_CLIENT_SECRET from the secret manager; never write them in settings.",
    )


@probe(
    "readiness.E006",
    item="A10",
    title="Production Scalekit environment",
    kind=SETTINGS,
    reads=(
        "SCALEKIT_AUTH.ENVIRONMENT_URL",
        "SCALEKIT_AUTH.CLIENT_ID",
        "READINESS.CUSTOM_SCALEKIT_DOMAINS",
    ),
)
def production_environment(ctx: ProbeContext) -> ProbeResult:
    url = contract.scalekit_setting("ENVIRONMENT_URL") or ""
    client_id = contract.scalekit_setting("CLIENT_ID") or ""
    host = hostname(url)
    evidence = {"environment_url": url, "client_id": mask_identifier(client_id)}
    findings = []
    if not url:
        findings.append(failed(f"{_sk('ENVIRONMENT_URL')} is empty"))
    elif urlsplit(url).scheme != "https":
        findings.append(failed(f"the Scalekit environment URL {url} is not https"))
    if host and (is_local(host) or is_ip(host)):
        findings.append(
            failed(f"the Scalekit environment URL {url} is an emulator or local address")
        )
    elif host.endswith(".scalekit.dev"):
        findings.append(failed(f"{url} is a Scalekit development environment (*.scalekit.dev)"))
    elif (
        host
        and not host.endswith(".scalekit.com")
        and host not in app_settings.CUSTOM_SCALEKIT_DOMAINS
    ):
        findings.append(
            failed(
                f"{host} is a custom domain: readiness cannot tell whether it serves the production "
                "Scalekit environment. Confirm it in the dashboard (Developers → Settings) and sign "
                "off A10, or list it in READINESS['CUSTOM_SCALEKIT_DOMAINS']"
            )
        )
    if client_id and not str(client_id).startswith("skc_"):
        findings.append(
            failed(f"the client id {mask_identifier(client_id)} does not start with skc_")
        )
    elif not client_id:
        findings.append(failed(f"{_sk('CLIENT_ID')} is empty"))
    return worst(
        findings,
        f"{host} is a production Scalekit environment.",
        evidence=evidence,
        observed=url,
        expected="https://<name>.scalekit.com",
    )


@probe(
    "readiness.E026",
    item="A11",
    title="scalekit_auth installed with its backend",
    kind=SETTINGS,
    reads=("INSTALLED_APPS", "AUTHENTICATION_BACKENDS"),
)
def scalekit_app_installed(ctx: ProbeContext) -> ProbeResult:
    backends = list(settings.AUTHENTICATION_BACKENDS)
    evidence = {"AUTHENTICATION_BACKENDS": backends}
    if not contract.app_installed("scalekit_auth"):
        return failed("scalekit_auth is not in INSTALLED_APPS.", evidence=evidence)
    if contract.BACKEND not in backends:
        return failed(f"{contract.BACKEND} is not in AUTHENTICATION_BACKENDS.", evidence=evidence)
    try:
        import_string(contract.BACKEND)
    except ImportError:
        return failed(
            f"{contract.BACKEND} cannot be imported: the backend is not installed.",
            evidence=evidence,
        )
    return passed(
        "scalekit_auth is installed and its backend authenticates users.", evidence=evidence
    )


@probe(
    "readiness.E027",
    item="A11",
    title="Scalekit login, callback, logout and webhook routed",
    kind=SETTINGS,
    reads=("ROOT_URLCONF",),
)
def scalekit_urls_installed(ctx: ProbeContext) -> ProbeResult:
    names = {
        contract.LOGIN_URL_NAME: "login view",
        contract.CALLBACK_URL_NAME: "callback view",
        contract.LOGOUT_URL_NAME: "logout view",
        contract.WEBHOOK_URL_NAME: "webhook view",
    }
    paths = {name: contract.url_path(name) for name in names}
    findings = [
        failed(f"{label} {name} is not installed")
        for name, label in names.items()
        if paths[name] is None
    ]
    return worst(
        findings,
        "Login, callback, logout and webhook views are routed.",
        evidence={name: path for name, path in paths.items() if path},
        hint="Include scalekit_auth.urls under auth/ with namespace scalekit_auth.",
    )


@probe(
    "readiness.E025",
    item="A12",
    title="No emulator or extra CA in production",
    kind=SETTINGS,
    reads=("INSTALLED_APPS", "SCALEKIT_AUTH.CA_BUNDLE"),
)
def no_emulator(ctx: ProbeContext) -> ProbeResult:
    findings = []
    if contract.app_installed("scalekit_auth.emulator"):
        findings.append(failed("the Scalekit emulator app (scalekit_auth.emulator) is installed"))
    if contract.scalekit_setting("CA_BUNDLE"):
        findings.append(
            failed(f"{_sk('CA_BUNDLE')} makes the SDK trust an extra CA (the emulator's)")
        )
    for name in ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"):
        if os.environ.get(name):
            findings.append(warned(f"{name} replaces the TLS trust store of this process"))
    return worst(findings, "No emulator and no extra CA: the SDK trusts public certificates only.")


def _check_redirect_uri(key: str, *, callback: bool) -> ProbeResult:
    uri = contract.scalekit_setting(key) or ""
    evidence = {key: uri}
    if not uri:
        return failed(f"{_sk(key)} is empty.", evidence=evidence)
    parts = urlsplit(uri)
    host = parts.hostname or ""
    findings = []
    if parts.scheme != "https":
        findings.append(failed(f"{_sk(key)} {uri} is not https"))
    if not host or host == "*" or is_local(host) or is_ip(host):
        findings.append(
            failed(f"{_sk(key)} host {host or '(none)'} is local, an IP address or a wildcard")
        )
    if parts.query or parts.fragment:
        findings.append(
            failed(f"{_sk(key)} has a query or fragment; Scalekit matches URIs exactly")
        )
    if len(uri) > 256:
        findings.append(failed(f"{_sk(key)} is {len(uri)} characters long (256 at most)"))
    if host and not validate_host(host, settings.ALLOWED_HOSTS):
        findings.append(failed(f"{_sk(key)} host {host} is not in ALLOWED_HOSTS"))
    try:
        match = resolve(parts.path or "/")
    except Resolver404:
        match = None
    if callback:
        if contract.url_path(contract.CALLBACK_URL_NAME) is None:
            findings.append(failed(f"callback view {contract.CALLBACK_URL_NAME} is not installed"))
        elif match is None or match.view_name != contract.CALLBACK_URL_NAME:
            findings.append(
                failed(
                    f"{_sk(key)} path {parts.path} does not resolve to {contract.CALLBACK_URL_NAME}"
                )
            )
    elif match is None:
        findings.append(
            failed(
                f"{_sk(key)} path {parts.path or '/'} matches no URL pattern: users would land on "
                "a 404 after logging out"
            )
        )
    elif match.view_name in (contract.LOGOUT_URL_NAME, contract.CALLBACK_URL_NAME):
        findings.append(
            failed(f"{_sk(key)} path {parts.path} is the {match.view_name} view itself")
        )
    return worst(findings, f"{_sk(key)} is {uri}.", evidence=evidence, observed=uri)


@probe(
    "readiness.E007",
    item="A13",
    title="Redirect URI is production-grade",
    kind=SETTINGS,
    reads=("SCALEKIT_AUTH.REDIRECT_URI", "ALLOWED_HOSTS", "ROOT_URLCONF"),
)
def redirect_uri(ctx: ProbeContext) -> ProbeResult:
    return _check_redirect_uri("REDIRECT_URI", callback=True)


@probe(
    "readiness.E008",
    item="A13",
    title="Post-logout redirect URI is production-grade",
    kind=SETTINGS,
    reads=("SCALEKIT_AUTH.POST_LOGOUT_REDIRECT_URI", "ALLOWED_HOSTS", "ROOT_URLCONF"),
)
def post_logout_redirect_uri(ctx: ProbeContext) -> ProbeResult:
    return _check_redirect_uri("POST_LOGOUT_REDIRECT_URI", callback=False)


# --- B. Core flows and session hardening -------------------------------------------------------


@probe(
    "readiness.E009",
    item="B03",
    title="SameSite=Lax on session and CSRF cookies",
    kind=SETTINGS,
    reads=("SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE"),
    asvs="3.4.3",
)
def samesite_lax(ctx: ProbeContext) -> ProbeResult:
    """Browsers read the SameSite value case-insensitively, and so does Django ("lax" is Lax)."""
    findings = []
    values = {}
    for name in ("SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE"):
        value = getattr(settings, name)
        values[name] = value
        spelled = value.lower() if isinstance(value, str) else value
        if spelled == "lax":
            continue
        if spelled == "strict":
            findings.append(
                failed(
                    f"{name} is {value!r}: the browser drops the cookie on the "
                    "redirect back from Scalekit, so the login state is lost"
                )
            )
        elif isinstance(value, str) and spelled not in ("none", ""):
            findings.append(
                failed(
                    f"{name} is {value!r}, not one of 'Lax', 'Strict', 'None': Django "
                    "refuses to set the cookie (ValueError)"
                )
            )
        else:
            findings.append(
                failed(
                    f"{name} is {value!r}: cross-site requests carry the cookie; "
                    "only a signed-off cross-site waiver allows that"
                )
            )
    return worst(findings, "Session and CSRF cookies are SameSite=Lax.", evidence=values)


@probe(
    "readiness.W010",
    item="B05",
    title="__Host- prefixed session cookie",
    kind=SETTINGS,
    reads=(
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_SECURE",
    ),
    asvs="3.4.4",
)
def host_cookie_prefix(ctx: ProbeContext) -> ProbeResult:
    evidence = {
        "SESSION_COOKIE_NAME": settings.SESSION_COOKIE_NAME,
        "SESSION_COOKIE_DOMAIN": settings.SESSION_COOKIE_DOMAIN,
        "SESSION_COOKIE_PATH": settings.SESSION_COOKIE_PATH,
    }
    if not settings.SESSION_COOKIE_NAME.startswith("__Host-"):
        return warned(
            f"The session cookie {settings.SESSION_COOKIE_NAME!r} has no __Host- prefix.",
            hint="SESSION_COOKIE_NAME = '__Host-sessionid' pins it to this exact host.",
            evidence=evidence,
        )
    if not (
        settings.SESSION_COOKIE_SECURE
        and settings.SESSION_COOKIE_DOMAIN is None
        and settings.SESSION_COOKIE_PATH == "/"
    ):
        return warned(
            "A __Host- cookie needs SESSION_COOKIE_SECURE, no domain and path '/'; "
            "browsers reject it otherwise.",
            evidence=evidence,
        )
    return passed("The session cookie is a __Host- cookie.", evidence=evidence)


@probe(
    "readiness.E011",
    item="B06",
    title="Session lifetime bounded",
    kind=SETTINGS,
    reads=("SESSION_COOKIE_AGE", "SESSION_EXPIRE_AT_BROWSER_CLOSE", "READINESS.MAX_SESSION_AGE"),
    asvs="3.3.2",
)
def session_lifetime(ctx: ProbeContext) -> ProbeResult:
    age, limit = settings.SESSION_COOKIE_AGE, app_settings.MAX_SESSION_AGE
    evidence = {
        "SESSION_COOKIE_AGE": age,
        "MAX_SESSION_AGE": limit,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": settings.SESSION_EXPIRE_AT_BROWSER_CLOSE,
    }
    if age > limit:
        return failed(
            f"SESSION_COOKIE_AGE is {age} s ({age / 3600:g} h), above {limit} s "
            f"({limit / 3600:g} h).",
            hint="Lower SESSION_COOKIE_AGE, or raise READINESS['MAX_SESSION_AGE'] with a reason.",
            evidence=evidence,
            observed=str(age),
            expected=f"<= {limit}",
        )
    return passed(f"Sessions last at most {age / 3600:g} h.", evidence=evidence)


@probe(
    "readiness.E012",
    item="B07",
    title="Tokens kept server side",
    kind=SETTINGS,
    reads=("SESSION_ENGINE",),
    asvs="3.2.3",
)
def tokens_server_side(ctx: ProbeContext) -> ProbeResult:
    engine = settings.SESSION_ENGINE
    if engine == "django.contrib.sessions.backends.signed_cookies":
        return failed(
            "SESSION_ENGINE is signed_cookies: Scalekit access and refresh tokens in the "
            "session would be readable in the browser.",
            observed=engine,
            hint="Use the db, cache or cached_db session engine.",
        )
    return passed(f"Sessions are stored server side ({engine}).", observed=engine)


@probe(
    "readiness.E013",
    item="B08",
    title="Scalekit middleware after session and auth middleware",
    kind=SETTINGS,
    reads=("MIDDLEWARE",),
)
def middleware_order(ctx: ProbeContext) -> ProbeResult:
    middleware = list(settings.MIDDLEWARE)
    evidence = {"MIDDLEWARE": middleware}
    if contract.SESSION_MIDDLEWARE not in middleware:
        return failed(
            f"{contract.SESSION_MIDDLEWARE} is not in MIDDLEWARE: tokens are never "
            "refreshed and request.scalekit is missing.",
            evidence=evidence,
        )
    try:
        import_string(contract.SESSION_MIDDLEWARE)
    except ImportError:
        return failed(f"{contract.SESSION_MIDDLEWARE} cannot be imported.", evidence=evidence)
    position = middleware.index(contract.SESSION_MIDDLEWARE)
    for required in (SESSION_MIDDLEWARE, AUTH_MIDDLEWARE):
        if required not in middleware:
            return failed(f"{required} is not in MIDDLEWARE.", evidence=evidence)
        if middleware.index(required) > position:
            return failed(
                f"ScalekitSessionMiddleware comes before {required.rsplit('.', 1)[1]}; "
                "it must come after it.",
                evidence=evidence,
            )
    return passed(
        "ScalekitSessionMiddleware runs after the session and auth middleware.", evidence=evidence
    )


@probe(
    "readiness.E014",
    item="B09",
    title="Scopes include openid and offline_access",
    kind=SETTINGS,
    reads=("SCALEKIT_AUTH.SCOPES", "MIDDLEWARE"),
)
def scopes(ctx: ProbeContext) -> ProbeResult:
    value = contract.scalekit_setting("SCOPES") or []
    scopes_list = value.split() if isinstance(value, str) else list(value)
    evidence = {"SCOPES": scopes_list}
    if "openid" not in scopes_list:
        return failed(f"{_sk('SCOPES')} lacks openid: no ID token is issued.", evidence=evidence)
    if "offline_access" not in scopes_list:
        if contract.SESSION_MIDDLEWARE in settings.MIDDLEWARE:
            return failed(
                f"{_sk('SCOPES')} lacks offline_access: no refresh token is issued, so "
                "the refresh middleware logs users out when the access token expires.",
                evidence=evidence,
            )
        return warned(
            f"{_sk('SCOPES')} lacks offline_access: sessions cannot be refreshed.",
            evidence=evidence,
        )
    return passed(f"Scopes: {' '.join(scopes_list)}.", evidence=evidence)


@probe(
    "readiness.W015",
    item="B16",
    title="Content Security Policy configured",
    kind=SETTINGS,
    reads=("SECURE_CSP", "CONTENT_SECURITY_POLICY", "MIDDLEWARE"),
    asvs="14.4.3",
)
def csp_configured(ctx: ProbeContext) -> ProbeResult:
    django_csp = getattr(settings, "SECURE_CSP", None)
    package_csp = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    if django_csp:
        return passed("SECURE_CSP defines a Content Security Policy.")
    if package_csp:
        if "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE:
            return warned(
                "CONTENT_SECURITY_POLICY is set but csp.middleware.CSPMiddleware is not in "
                "MIDDLEWARE, so no header is sent."
            )
        return passed("django-csp sends the CONTENT_SECURITY_POLICY.")
    return warned(
        "No Content Security Policy is configured.",
        hint="Install django-csp (CONTENT_SECURITY_POLICY) or use SECURE_CSP on Django 6.",
    )


@probe(
    "readiness.E021",
    item="B17",
    title="Token verification leeway within bounds",
    kind=SETTINGS,
    reads=("SCALEKIT_AUTH.TOKEN_LEEWAY_SECONDS", "READINESS.MAX_TOKEN_LEEWAY"),
)
def token_leeway(ctx: ProbeContext) -> ProbeResult:
    leeway = contract.scalekit_setting("TOKEN_LEEWAY_SECONDS")
    limit = app_settings.MAX_TOKEN_LEEWAY
    evidence = {"TOKEN_LEEWAY_SECONDS": leeway, "MAX_TOKEN_LEEWAY": limit}
    if leeway is None:
        return warned(
            f"{_sk('TOKEN_LEEWAY_SECONDS')} is not defined by scalekit_auth yet.", evidence=evidence
        )
    if isinstance(leeway, bool) or not isinstance(leeway, int | float):
        return failed(
            f"{_sk('TOKEN_LEEWAY_SECONDS')} must be a number of seconds, not {leeway!r}.",
            evidence=evidence,
        )
    if leeway < 0 or leeway > limit:
        return failed(
            f"{_sk('TOKEN_LEEWAY_SECONDS')} is {leeway} s; expired tokens must not be "
            f"accepted for more than {limit} s.",
            evidence=evidence,
        )
    return passed(f"Expired tokens are accepted for at most {leeway} s.", evidence=evidence)


# --- C. Enterprise ------------------------------------------------------------------------------


@probe(
    "readiness.E016",
    item="C01",
    title="Webhook secret from the environment",
    kind=SETTINGS,
    reads=("SCALEKIT_AUTH.WEBHOOK_SECRET",),
)
def webhook_secret(ctx: ProbeContext) -> ProbeResult:
    findings, shown = credential_findings("WEBHOOK_SECRET", secret=True)
    value = contract.scalekit_setting("WEBHOOK_SECRET") or ""
    if value and not findings and not str(value).startswith("whsec_"):
        findings.append(warned(f"{_sk('WEBHOOK_SECRET')} does not look like whsec_..."))
    return worst(
        findings,
        "The webhook secret is set from the environment.",
        evidence={"WEBHOOK_SECRET": shown},
    )


@probe(
    "readiness.E017",
    item="C03",
    title="Webhook view routed and CSRF exempt",
    kind=SETTINGS,
    reads=("ROOT_URLCONF",),
)
def webhook_wired(ctx: ProbeContext) -> ProbeResult:
    path = contract.url_path(contract.WEBHOOK_URL_NAME)
    if path is None:
        return failed(f"webhook view {contract.WEBHOOK_URL_NAME} is not installed.")
    view = resolve(path).func
    if not getattr(view, "csrf_exempt", False):
        return failed(
            f"The webhook view at {path} is not csrf_exempt: Scalekit's POSTs get 403.",
            evidence={"path": path},
        )
    return passed(f"The webhook view is routed at {path} and CSRF exempt.", evidence={"path": path})


# --- User management, monitoring, reliability, migration code -------------------------------


@probe(
    "readiness.E030",
    item="U01",
    title="Identity link model installed",
    kind=SETTINGS,
    reads=("INSTALLED_APPS",),
)
def identity_model(ctx: ProbeContext) -> ProbeResult:
    model = contract.get_model("scalekit_auth", "ScalekitIdentity")
    if model is None:
        return failed(
            "scalekit_auth.ScalekitIdentity is not installed: Scalekit users cannot be "
            "linked to Django users by external id."
        )
    fields = {f.name for f in model._meta.get_fields()}
    missing = sorted({"scalekit_user_id", "organization_id", "external_id"} - fields)
    if missing:
        return failed(f"scalekit_auth.ScalekitIdentity lacks {', '.join(missing)}.")
    return passed("Scalekit user id, organization and external id are stored per Django user.")


def _logger_handlers(config: dict, name: str) -> tuple[list[str], str]:
    """Handlers and level of the logger that handles ``name`` (itself, a parent, or the root)."""
    loggers = config.get("loggers", {})
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in loggers and loggers[candidate].get("handlers"):
            return list(loggers[candidate]["handlers"]), loggers[candidate].get("level", "NOTSET")
    root = config.get("root") or loggers.get("", {})
    return list(root.get("handlers", [])), root.get("level", "WARNING")


LEVELS = {"NOTSET": 0, "DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


@probe(
    "readiness.W018",
    item="E01",
    title="Security and auth logs routed",
    kind=SETTINGS,
    reads=("LOGGING", "READINESS.AUTH_LOGGER"),
)
def security_logging(ctx: ProbeContext) -> ProbeResult:
    config = getattr(settings, "LOGGING", None) or {}
    if not config:
        return warned(
            "LOGGING is not configured: with DEBUG off, django.security only mails ADMINS."
        )
    handlers_config = config.get("handlers", {})
    findings, evidence = [], {}
    for name in ("django.security", app_settings.AUTH_LOGGER):
        handlers, level = _logger_handlers(config, name)
        real = [
            h
            for h in handlers
            if "NullHandler" not in str(handlers_config.get(h, {}).get("class", ""))
        ]
        evidence[name] = {"handlers": real, "level": level}
        if not real:
            findings.append(warned(f"logger {name!r} has no handler: its records are lost"))
        elif LEVELS.get(str(level).upper(), 0) > LEVELS["WARNING"]:
            findings.append(warned(f"logger {name!r} is at {level}: warnings are dropped"))
    return worst(
        findings,
        "django.security and the auth logger reach a handler at WARNING or below.",
        evidence=evidence,
    )


@probe(
    "readiness.W019",
    item="E02",
    title="Error reporting configured",
    kind=SETTINGS,
    reads=("ADMINS", "READINESS.ERROR_TRACKER_ENV"),
)
def error_reporting(ctx: ProbeContext) -> ProbeResult:
    trackers = [name for name in app_settings.ERROR_TRACKER_ENV if os.environ.get(name)]
    evidence = {"admins": len(settings.ADMINS), "tracker_env": trackers}
    if settings.ADMINS or trackers:
        return passed(
            f"Errors reach {len(settings.ADMINS)} admin(s) and {len(trackers)} tracker(s).",
            evidence=evidence,
        )
    return warned(
        "No ADMINS and no error tracker (e.g. SENTRY_DSN): 500s go unnoticed.", evidence=evidence
    )


@probe(
    "readiness.W020",
    item="E03",
    title="Health endpoint",
    kind=SETTINGS,
    reads=("INSTALLED_APPS", "READINESS.HEALTH_URL_NAME"),
)
def health_endpoint(ctx: ProbeContext) -> ProbeResult:
    installed = [app for app in ("health_check", "watchman") if contract.app_installed(app)]
    name = app_settings.HEALTH_URL_NAME
    if not name:
        return warned(
            "READINESS['HEALTH_URL_NAME'] names no health endpoint.", evidence={"apps": installed}
        )
    path = contract.url_path(name)
    if path is None:
        return warned(
            f"The health endpoint {name!r} does not resolve.", evidence={"apps": installed}
        )
    return passed(f"Health endpoint at {path}.", evidence={"apps": installed, "path": path})


def _admin_registered(model: type) -> bool:
    return admin.site.is_registered(model)


@probe(
    "readiness.W028",
    item="E05",
    title="Auth event log installed",
    kind=SETTINGS,
    reads=("INSTALLED_APPS",),
)
def auth_event_log(ctx: ProbeContext) -> ProbeResult:
    model = contract.get_model("scalekit_auth", "AuthEvent")
    if model is None:
        return warned(
            "scalekit_auth.AuthEvent is not installed: logins, failures and refreshes "
            "are not recorded."
        )
    if not _admin_registered(model):
        return warned("scalekit_auth.AuthEvent is not in the admin.")
    return passed("Auth events are recorded and shown in the admin.")


@probe(
    "readiness.E022",
    item="R01",
    title="Rollback switch present",
    kind=SETTINGS,
    reads=("INSTALLED_APPS",),
)
def rollback_switch(ctx: ProbeContext) -> ProbeResult:
    model = contract.get_model("scalekit_auth", "RolloutSettings")
    if model is None:
        return failed(
            "scalekit_auth.RolloutSettings is not installed: there is no kill switch to "
            "fall back to the legacy login."
        )
    if "enabled" not in {f.name for f in model._meta.get_fields()}:
        return failed("scalekit_auth.RolloutSettings has no 'enabled' kill switch.")
    if not _admin_registered(model):
        return failed(
            "scalekit_auth.RolloutSettings is not in the admin: rolling back needs a deploy."
        )
    return passed("The rollout kill switch is editable in the admin.")


@probe(
    "readiness.E023",
    item="R02",
    title="Rollout percentage valid",
    kind=SETTINGS,
    reads=("SCALEKIT_AUTH.ROLLOUT_PERCENTAGE",),
)
def rollout_percentage(ctx: ProbeContext) -> ProbeResult:
    value = contract.scalekit_setting("ROLLOUT_PERCENTAGE")
    if value is None:
        return passed("No rollout percentage in settings; the admin's RolloutSettings decides.")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        return failed(f"{_sk('ROLLOUT_PERCENTAGE')} must be a number from 0 to 100, not {value!r}.")
    return passed(f"{value}% of users log in through Scalekit.", observed=str(value))


LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@probe(
    "readiness.E024",
    item="R03",
    title="Cache shared across processes",
    kind=SETTINGS,
    reads=("CACHES",),
)
def shared_cache(ctx: ProbeContext) -> ProbeResult:
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend in LOCAL_CACHES:
        return failed(
            f"The default cache is {backend.rsplit('.', 1)[1]}, private to each process: "
            "refresh locks and the JWKS cache are not shared.",
            observed=backend,
            hint="Use Redis (django.core.cache.backends.redis.RedisCache).",
        )
    if backend.endswith("FileBasedCache"):
        return warned("The default cache is file based: shared on one host only.", observed=backend)
    return passed(f"The default cache ({backend.rsplit('.', 1)[-1]}) is shared.", observed=backend)


@probe(
    "readiness.W029",
    item="M09",
    title="API authentication through Scalekit tokens",
    kind=SETTINGS,
    reads=("REST_FRAMEWORK", "INSTALLED_APPS"),
)
def drf_authentication(ctx: ProbeContext) -> ProbeResult:
    if not contract.app_installed("rest_framework"):
        return skipped("Django REST framework is not installed.")
    classes: Iterable[str] = (getattr(settings, "REST_FRAMEWORK", {}) or {}).get(
        "DEFAULT_AUTHENTICATION_CLASSES", ()
    )
    classes = list(classes)
    if any(str(path).startswith("scalekit_auth.") for path in classes):
        return passed("DRF authenticates Scalekit bearer tokens.", evidence={"classes": classes})
    return warned(
        "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'] has no scalekit_auth class: "
        "API clients still use the legacy authentication.",
        evidence={"classes": classes},
    )


@probe(
    "readiness.W062",
    item="A06",
    title="HSTS max-age of a year or more",
    kind=SETTINGS,
    reads=("SECURE_HSTS_SECONDS",),
    asvs="9.1.1",
)
def hsts_max_age(ctx: ProbeContext) -> ProbeResult:
    seconds = settings.SECURE_HSTS_SECONDS or 0
    if seconds <= 0:
        return failed(
            "SECURE_HSTS_SECONDS is 0: browsers are not told to insist on https.",
            observed=str(seconds),
            expected=">= 31536000",
        )
    if seconds < 31536000:
        return warned(
            f"SECURE_HSTS_SECONDS is {seconds} s, under a year (31536000 s).",
            observed=str(seconds),
            expected=">= 31536000",
        )
    return passed(f"HSTS max-age is {seconds} s.", observed=str(seconds))
