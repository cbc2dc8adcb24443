"""Per-setting digests: secrets keyed with SECRET_KEY, key rotation through the fallbacks."""

from __future__ import annotations

import hashlib
import json

from django.test import override_settings

from readiness.fingerprints import (
    KEYED_PREFIX,
    changed_settings,
    digest_matches,
    fingerprint,
    setting_digest,
    setting_digests,
)

SECRET = "sks_" + "s" * 40
OLD_KEY = "old-" + "k" * 60
NEW_KEY = "new-" + "n" * 60


def bare_sha256(path: str, value: object) -> str:
    return hashlib.sha256(json.dumps([path, value], sort_keys=True).encode()).hexdigest()[:16]


@override_settings(SCALEKIT_AUTH={"CLIENT_SECRET": SECRET}, SECRET_KEY=OLD_KEY)
def test_a_secret_is_digested_with_a_key_nobody_outside_has():
    """Without SECRET_KEY a stored digest cannot be checked against a guessed secret."""
    digest = setting_digest("SCALEKIT_AUTH.CLIENT_SECRET")
    assert digest.startswith(KEYED_PREFIX) and len(digest) == len(KEYED_PREFIX) + 16
    assert SECRET not in digest
    assert digest[len(KEYED_PREFIX) :] != bare_sha256("SCALEKIT_AUTH.CLIENT_SECRET", SECRET)
    assert setting_digest("SCALEKIT_AUTH.CLIENT_SECRET", secret=NEW_KEY) != digest


@override_settings(SESSION_COOKIE_AGE=3600)
def test_a_plain_setting_is_a_plain_digest():
    assert setting_digest("SESSION_COOKIE_AGE") == bare_sha256("SESSION_COOKIE_AGE", 3600)


def test_secret_key_rotation_keeps_digests_through_the_fallbacks():
    with override_settings(SCALEKIT_AUTH={"CLIENT_SECRET": SECRET}, SECRET_KEY=OLD_KEY):
        digests = setting_digests(["SCALEKIT_AUTH.CLIENT_SECRET"])
    rotated = {"SCALEKIT_AUTH": {"CLIENT_SECRET": SECRET}, "SECRET_KEY": NEW_KEY}
    with override_settings(**rotated, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert changed_settings(digests) == []
    with override_settings(**rotated, SECRET_KEY_FALLBACKS=[]):
        assert changed_settings(digests) == ["SCALEKIT_AUTH.CLIENT_SECRET"]
    with override_settings(
        SCALEKIT_AUTH={"CLIENT_SECRET": "sks_rotated"},
        SECRET_KEY=NEW_KEY,
        SECRET_KEY_FALLBACKS=[OLD_KEY],
    ):
        assert not digest_matches(
            "SCALEKIT_AUTH.CLIENT_SECRET", digests["SCALEKIT_AUTH.CLIENT_SECRET"]
        )


def test_only_the_settings_that_changed_are_named():
    with override_settings(SESSION_COOKIE_AGE=3600, DEBUG=False):
        digests = setting_digests(["SESSION_COOKIE_AGE", "DEBUG"])
    with override_settings(SESSION_COOKIE_AGE=60, DEBUG=False):
        assert changed_settings(digests) == ["SESSION_COOKIE_AGE"]


def test_fingerprint_of_a_set():
    assert fingerprint([]) == ""
    with override_settings(SESSION_COOKIE_AGE=3600):
        first = fingerprint(["SESSION_COOKIE_AGE", "DEBUG"])
        assert first == fingerprint(["DEBUG", "SESSION_COOKIE_AGE", "DEBUG"])
    with override_settings(SESSION_COOKIE_AGE=60):
        assert fingerprint(["SESSION_COOKIE_AGE", "DEBUG"]) != first
