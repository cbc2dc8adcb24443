"""Our own token verification: forged tokens are refused, key rotation is followed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scalekit_auth import tokens

pytestmark = pytest.mark.django_db


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(emulator, **overrides):
    now = int(time.time())
    claims = {
        "iss": emulator.url,
        "aud": [emulator.client_id],
        "sub": "usr_1",
        "oid": "org_1",
        "sid": "ses_1",
        "jti": "tkn_1",
        "iat": now - 1,
        "exp": now + 300,
        "roles": ["member"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_token_signed_by_the_environment_verifies(auth_emulator):
    token = auth_emulator.keys.sign(claims_for(auth_emulator))
    assert tokens.verify(token)["sub"] == "usr_1"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://other.scalekit.example"}, "wrong_issuer"),
        ({"aud": ["skc_someone_else"]}, "wrong_audience"),
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"sub": None}, "invalid"),
    ],
)
def test_claims_are_checked(auth_emulator, overrides, reason):
    token = auth_emulator.keys.sign(claims_for(auth_emulator, **overrides))
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify(token)
    assert excinfo.value.reason == reason


def test_small_clock_skew_is_tolerated(auth_emulator):
    token = auth_emulator.keys.sign(claims_for(auth_emulator, exp=int(time.time()) - 5))
    assert tokens.verify(token)["sub"] == "usr_1"


def test_alg_none_is_refused(auth_emulator):
    header = b64(
        json.dumps({"alg": "none", "typ": "JWT", "kid": auth_emulator.keys.active.kid}).encode()
    )
    payload = b64(json.dumps(claims_for(auth_emulator)).encode())
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify(f"{header}.{payload}.")
    assert excinfo.value.reason == "bad_algorithm"


def test_hs256_signed_with_the_public_key_is_refused(auth_emulator):
    public_pem = auth_emulator.keys.active.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": auth_emulator.keys.active.kid}).encode()
    )
    payload = b64(json.dumps(claims_for(auth_emulator)).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify(f"{header}.{payload}.{signature}")
    assert excinfo.value.reason == "bad_algorithm"


def test_tampered_payload_is_refused(auth_emulator):
    header, _, signature = auth_emulator.keys.sign(claims_for(auth_emulator)).split(".")
    payload = b64(json.dumps(claims_for(auth_emulator, roles=["admin"])).encode())
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify(f"{header}.{payload}.{signature}")
    assert excinfo.value.reason == "bad_signature"


def test_unknown_kid_is_refused_after_one_refetch(auth_emulator):
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        claims_for(auth_emulator), attacker, algorithm="RS256", headers={"kid": "snk_999"}
    )
    auth_emulator.control.reset_counters()
    for _ in range(3):
        with pytest.raises(tokens.TokenError) as excinfo:
            tokens.verify(token)
        assert excinfo.value.reason == "unknown_kid"
    # Refetched once for the unknown kid, then rate limited.
    assert auth_emulator.control.counters()["calls"]["/keys"] == 1


def test_same_kid_signed_by_another_key_is_refused(auth_emulator):
    tokens.verify(auth_emulator.keys.sign(claims_for(auth_emulator)))  # load the JWKS
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        claims_for(auth_emulator),
        attacker,
        algorithm="RS256",
        headers={"kid": auth_emulator.keys.active.kid},
    )
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify(token)
    assert excinfo.value.reason == "bad_signature"


def test_key_rotation_is_followed_with_one_jwks_fetch(auth_emulator):
    auth_emulator.control.reset_counters()
    old_token = auth_emulator.keys.sign(claims_for(auth_emulator))
    assert tokens.verify(old_token)
    auth_emulator.control.rotate_keys(grace_seconds=300)
    new_token = auth_emulator.keys.sign(claims_for(auth_emulator))
    # Within JWKS_MIN_REFETCH_SECONDS of the last fetch, an unknown kid is not fetched again...
    with pytest.raises(tokens.TokenError, match="refetched recently"):
        tokens.verify(new_token)
    # ...after it, the new key is fetched once, and tokens of the old key still verify.
    tokens.keys._last_fetch -= tokens.app_settings.JWKS_MIN_REFETCH_SECONDS
    assert tokens.verify(new_token)["sub"] == "usr_1"
    assert tokens.verify(old_token)["sub"] == "usr_1"
    assert auth_emulator.control.counters()["calls"]["/keys"] == 2


def test_bearer_claims_are_cached_until_expiry(auth_emulator, settings):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "TOKEN_LEEWAY_SECONDS": 0}
    exp = int(time.time()) + 3  # whole seconds: at least 2 s from now, even on a busy machine
    token = auth_emulator.keys.sign(claims_for(auth_emulator, exp=exp))
    first = tokens.verify_bearer(token)
    assert tokens.verify_bearer(token) is first  # served from the cache
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify_bearer(token)
    assert excinfo.value.reason == "expired"


def test_a_key_withdrawn_from_the_jwks_stops_verifying_after_the_cache_lifetime(
    auth_emulator, settings
):
    """Rotation with no grace: the old key leaves /keys at once. Within JWKS_CACHE_SECONDS this
    process may still trust it; after, neither the Django cache nor the process's own copy does,
    with no cache cleared by hand."""
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "JWKS_CACHE_SECONDS": 1}
    old = auth_emulator.keys.active
    assert tokens.verify(auth_emulator.keys.sign(claims_for(auth_emulator)))["sub"] == "usr_1"
    rotation = auth_emulator.control.rotate_keys(grace_seconds=0)
    assert rotation["old_kid"] == old.kid
    signed_by_withdrawn = jwt.encode(
        claims_for(auth_emulator, sub="usr_attacker", jti="tkn_2"),
        old.private_key,
        algorithm="RS256",
        headers={"kid": old.kid},
    )
    time.sleep(1.2)
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify(signed_by_withdrawn)
    assert excinfo.value.reason == "unknown_kid"
    with pytest.raises(tokens.TokenError) as excinfo:
        tokens.verify_bearer(signed_by_withdrawn)
    assert excinfo.value.reason == "unknown_kid"
    assert tokens.verify(auth_emulator.keys.sign(claims_for(auth_emulator)))["sub"] == "usr_1"


def test_the_jwks_is_fetched_again_once_per_cache_lifetime(auth_emulator, settings):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "JWKS_CACHE_SECONDS": 1}
    token = auth_emulator.keys.sign(claims_for(auth_emulator))
    auth_emulator.control.reset_counters()
    for _ in range(3):
        tokens.verify(token)
    assert auth_emulator.control.counters()["calls"]["/keys"] == 1
    time.sleep(1.2)
    for _ in range(3):
        tokens.verify(token)
    assert auth_emulator.control.counters()["calls"]["/keys"] == 2


def test_an_outdated_jwks_that_cannot_be_fetched_again_verifies_nothing(auth_emulator, settings):
    """Past its lifetime the copy is not used as a fallback; failed fetches are retried at most
    once per JWKS_MIN_REFETCH_SECONDS for bearer tokens."""
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "JWKS_CACHE_SECONDS": 1}
    token = auth_emulator.keys.sign(claims_for(auth_emulator))
    tokens.verify(token)
    auth_emulator.control.set_faults(unavailable_ratio=1.0, methods=["/keys"])
    auth_emulator.control.reset_counters()
    time.sleep(1.2)
    for _ in range(3):
        with pytest.raises(tokens.TokenError) as excinfo:
            tokens.verify(token)
        assert excinfo.value.reason == "jwks_unavailable"
    assert auth_emulator.control.counters()["calls"]["/keys"] == 1
    auth_emulator.control.clear_faults()
    tokens.keys._last_failure -= tokens.app_settings.JWKS_MIN_REFETCH_SECONDS
    assert tokens.verify(token)["sub"] == "usr_1"
