"""Kind D: Django's own deploy checks (``check --deploy``), reused by id.

Django's security checks already know these rules; re-implementing them would drift. Each probe
picks the ids of one checklist item from ``run_checks(include_deployment_checks=True)``, which runs
once per readiness run. A check listed in ``SILENCED_SYSTEM_CHECKS`` is reported as *waived*: it
counts against the item until an active sign-off of H05 covers it (see ``runner``).
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.checks import run_checks

from ..catalogue import WAIVER_HINT
from ..registry import (
    DEPLOY,
    FAIL,
    PASS,
    WAIVED,
    WARN,
    Probe,
    ProbeContext,
    ProbeResult,
    register,
)

#: Django deploy checks the catalogue calls optional: they warn, in A06 and in A14 alike.
ADVISORY_DEPLOY_IDS = frozenset({"security.W021"})  # HSTS preload


def deploy_messages(ctx: ProbeContext) -> list[checks.CheckMessage]:
    return ctx.cached("deploy_messages", lambda: run_checks(include_deployment_checks=True))


def _summarise(
    messages: list[checks.CheckMessage], advisory_ids: frozenset[str], ok: str
) -> ProbeResult:
    silenced = set(settings.SILENCED_SYSTEM_CHECKS)
    failing, warning, waived = [], [], []
    for message in messages:
        line = f"{message.id}: {message.msg}"
        if message.id in silenced:
            waived.append(line)
        elif message.id in advisory_ids:
            warning.append(line)
        else:
            failing.append(line)
    evidence = {"failing": failing, "advisory": warning, "waived": waived}
    hint = next((m.hint for m in messages if m.hint and m.id not in silenced), "") or ""
    if failing:
        return ProbeResult(FAIL, " ".join(failing), hint=hint, evidence=evidence)
    if waived:
        return ProbeResult(
            WAIVED,
            "Silenced in SILENCED_SYSTEM_CHECKS: " + " ".join(waived),
            hint=WAIVER_HINT,
            evidence=evidence,
        )
    if warning:
        return ProbeResult(WARN, " ".join(warning), hint=hint, evidence=evidence)
    return ProbeResult(PASS, ok, evidence=evidence)


def deploy_probe(
    id: str,
    *,
    item: str,
    title: str,
    django_ids: tuple[str, ...],
    ok: str,
    advisory: tuple[str, ...] = (),
    reads: tuple[str, ...] = (),
    asvs: str = "",
) -> Probe:
    def run(ctx: ProbeContext) -> ProbeResult:
        messages = [m for m in deploy_messages(ctx) if m.id in django_ids]
        result = _summarise(messages, frozenset(advisory), ok)
        return ProbeResult(
            result.status,
            result.message,
            hint=result.hint,
            evidence={**result.evidence, "django_checks": list(django_ids)},
        )

    run.__name__ = run.__qualname__ = f"deploy_{item.lower()}"
    return register(
        Probe(
            id=id,
            item=item,
            title=title,
            kind=DEPLOY,
            func=run,
            severity="blocker" if id.startswith("readiness.E") else "advisory",
            reads=reads + ("SILENCED_SYSTEM_CHECKS",),
            asvs=asvs,
        )
    )


deploy_probe(
    "readiness.E031",
    item="A01",
    title="DEBUG is off",
    django_ids=("security.W018",),
    ok="DEBUG is False.",
    reads=("DEBUG",),
)
deploy_probe(
    "readiness.E032",
    item="A02",
    title="Strong secret key and fallbacks",
    django_ids=("security.W009", "security.W025"),
    ok="SECRET_KEY and its fallbacks are long, varied and not django-insecure-.",
    reads=("SECRET_KEY", "SECRET_KEY_FALLBACKS"),
)
deploy_probe(
    "readiness.E033",
    item="A03",
    title="ALLOWED_HOSTS set for deployment",
    django_ids=("security.W020",),
    ok="ALLOWED_HOSTS is not empty.",
    reads=("ALLOWED_HOSTS",),
)
deploy_probe(
    "readiness.E034",
    item="A04",
    title="SecurityMiddleware redirects http to https",
    django_ids=("security.W001", "security.W008"),
    ok="SecurityMiddleware is installed and SECURE_SSL_REDIRECT is on.",
    reads=("MIDDLEWARE", "SECURE_SSL_REDIRECT"),
    asvs="9.1.1",
)
deploy_probe(
    "readiness.E035",
    item="A06",
    title="HSTS with subdomains",
    django_ids=("security.W004", "security.W005", "security.W021"),
    advisory=tuple(ADVISORY_DEPLOY_IDS),
    ok="HSTS is on for a year or more, subdomains and preload included.",
    reads=("SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD"),
    asvs="9.1.1",
)
deploy_probe(
    "readiness.E036",
    item="B01",
    title="Session cookie Secure",
    django_ids=("security.W010", "security.W011", "security.W012"),
    ok="SESSION_COOKIE_SECURE is True.",
    reads=("SESSION_COOKIE_SECURE",),
    asvs="3.4.1",
)
deploy_probe(
    "readiness.E037",
    item="B02",
    title="Session cookie HttpOnly",
    django_ids=("security.W013", "security.W014", "security.W015"),
    ok="SESSION_COOKIE_HTTPONLY is True.",
    reads=("SESSION_COOKIE_HTTPONLY",),
    asvs="3.4.2",
)
deploy_probe(
    "readiness.E038",
    item="B04",
    title="CSRF middleware and Secure CSRF cookie",
    django_ids=("security.W003", "security.W016"),
    ok="CsrfViewMiddleware is installed and the CSRF cookie is Secure.",
    reads=("MIDDLEWARE", "CSRF_COOKIE_SECURE", "CSRF_USE_SESSIONS"),
    asvs="4.2.2",
)
deploy_probe(
    "readiness.E039",
    item="B15",
    title="Security headers",
    django_ids=(
        "security.W002",
        "security.W006",
        "security.W019",
        "security.W022",
        "security.E023",
        "security.E024",
    ),
    ok="X-Frame-Options DENY, nosniff, a referrer policy and a valid COOP are set.",
    reads=(
        "X_FRAME_OPTIONS",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "SECURE_REFERRER_POLICY",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY",
        "MIDDLEWARE",
    ),
    asvs="14.4.3",
)


def deploy_checks_clean(ctx: ProbeContext) -> ProbeResult:
    """Every deploy check of every app (readiness's own excepted: they are reported one by one).

    The optional ones (``ADVISORY_DEPLOY_IDS``, HSTS preload) warn here as they do in their own
    item, so a deploy without preload is not blocked by A14 while A06 lets it pass."""
    messages = [
        m
        for m in deploy_messages(ctx)
        if m.level >= checks.WARNING and not (m.id or "").startswith("readiness.")
    ]
    return _summarise(messages, ADVISORY_DEPLOY_IDS, "manage.py check --deploy reports nothing.")


register(
    Probe(
        id="readiness.E040",
        item="A14",
        title="Django deploy checks clean",
        kind=DEPLOY,
        func=deploy_checks_clean,
        reads=("SILENCED_SYSTEM_CHECKS",),
    )
)
