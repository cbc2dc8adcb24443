"""Kind D probes: Django's own deploy checks reused by id, waivers through SILENCED_SYSTEM_CHECKS."""

from __future__ import annotations

import pytest

from readiness.registry import FAIL, PASS, WAIVED, WARN

from .helpers import covers, production, run_probe

pytestmark = pytest.mark.django_db

REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379",
    }
}

CASES = [
    ("readiness.E031", PASS, {}, "DEBUG is False"),
    ("readiness.E031", FAIL, {"DEBUG": True}, "security.W018"),
    ("readiness.E032", PASS, {}, "long, varied"),
    ("readiness.E032", FAIL, {"SECRET_KEY": "django-insecure-short"}, "security.W009"),
    ("readiness.E032", FAIL, {"SECRET_KEY_FALLBACKS": ["weak"]}, "security.W025"),
    ("readiness.E033", PASS, {}, "not empty"),
    ("readiness.E033", FAIL, {"ALLOWED_HOSTS": []}, "security.W020"),
    ("readiness.E034", PASS, {}, "SECURE_SSL_REDIRECT is on"),
    ("readiness.E034", FAIL, {"SECURE_SSL_REDIRECT": False}, "security.W008"),
    (
        "readiness.E034",
        WAIVED,
        {"SECURE_SSL_REDIRECT": False, "SILENCED_SYSTEM_CHECKS": ["security.W008"]},
        "security.W008",
    ),
    ("readiness.E035", PASS, {}, "HSTS is on"),
    ("readiness.E035", FAIL, {"SECURE_HSTS_SECONDS": 0}, "security.W004"),
    ("readiness.E035", FAIL, {"SECURE_HSTS_INCLUDE_SUBDOMAINS": False}, "security.W005"),
    ("readiness.E035", WARN, {"SECURE_HSTS_PRELOAD": False}, "security.W021"),
    ("readiness.E036", PASS, {}, "SESSION_COOKIE_SECURE is True"),
    ("readiness.E036", FAIL, {"SESSION_COOKIE_SECURE": False}, "security.W01"),
    ("readiness.E037", PASS, {}, "HTTPONLY is True"),
    ("readiness.E037", FAIL, {"SESSION_COOKIE_HTTPONLY": False}, "security.W01"),
    ("readiness.E038", PASS, {}, "CSRF cookie is Secure"),
    ("readiness.E038", FAIL, {"CSRF_COOKIE_SECURE": False}, "security.W016"),
    ("readiness.E039", PASS, {}, "X-Frame-Options DENY"),
    ("readiness.E039", FAIL, {"X_FRAME_OPTIONS": "SAMEORIGIN"}, "security.W019"),
    ("readiness.E039", FAIL, {"SECURE_REFERRER_POLICY": "bogus"}, "security.E023"),
    ("readiness.E039", FAIL, {"SECURE_CONTENT_TYPE_NOSNIFF": False}, "security.W006"),
    ("readiness.E040", PASS, {"CACHES": REDIS}, "reports nothing"),
    ("readiness.E040", FAIL, {"DEBUG": True, "CACHES": REDIS}, "security.W018"),
    # HSTS preload is optional (A06 only warns on it): A14 must not block a deploy over it.
    ("readiness.E040", WARN, {"SECURE_HSTS_PRELOAD": False, "CACHES": REDIS}, "security.W021"),
    (
        "readiness.E040",
        FAIL,
        {"SECURE_HSTS_PRELOAD": False, "DEBUG": True, "CACHES": REDIS},
        "security.W018",
    ),
    (
        "readiness.E040",
        WAIVED,
        {
            "SECURE_SSL_REDIRECT": False,
            "CACHES": REDIS,
            "SILENCED_SYSTEM_CHECKS": ["security.W008"],
        },
        "security.W008",
    ),
]

for _probe_id, _outcome, _, _ in CASES:
    covers(_probe_id, _outcome)(lambda: None)


@pytest.mark.parametrize(
    ("probe_id", "expected", "overrides", "fragment"),
    CASES,
    ids=[f"{c[0].split('.')[1]}-{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_deploy_probe(probe_id, expected, overrides, fragment):
    with production(**overrides):
        result = run_probe(probe_id)
    assert result.status == expected, result.message
    assert fragment in result.message


def test_deploy_clean_ignores_readiness_own_checks():
    """A14 lists other apps' deploy warnings, not readiness's (they are reported one by one)."""
    with production(CACHES=REDIS, SESSION_COOKIE_AGE=1209600):
        result = run_probe("readiness.E040")
    assert result.status == PASS
    assert not any("readiness." in line for line in result.evidence["failing"])


def test_optional_deploy_check_warns_alike_in_its_item_and_in_a14():
    with production(SECURE_HSTS_PRELOAD=False, CACHES=REDIS):
        hsts, clean = run_probe("readiness.E035"), run_probe("readiness.E040")
    assert hsts.status == clean.status == WARN
    assert [line.split(":")[0] for line in clean.evidence["advisory"]] == ["security.W021"]
    assert clean.evidence["failing"] == []
