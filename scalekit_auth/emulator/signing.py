"""RS256 signing keys with ``snk_`` key ids, the JWKS document, and token minting.

One key signs at a time. Rotating makes a new key the signer and keeps the old one published in
``/keys`` for a grace period, so tokens signed before the rotation still verify (the real SDK
caches the JWKS for the life of its process; our own verifier refetches on an unknown ``kid``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import ids

KIND = "signing_key"
# The longest grace period a rotated key may stay published (30 days).
MAX_GRACE_SECONDS = 30 * 24 * 3600


def check_grace_seconds(value: Any) -> float:
    """``value`` as a grace period in seconds; ``ValueError`` says what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"grace_seconds must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or not 0 <= value <= MAX_GRACE_SECONDS:
        raise ValueError(
            f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS} (30 days), not {value!r}"
        )
    return float(value)


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    created_at: float
    retired_at: float | None = None
    published_until: float | None = None

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=ids.new_id("snk"), private_key=key, created_at=time.time())

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": public["n"],
            "e": public["e"],
        }

    def dumps(self) -> bytes:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "kid": self.kid,
                "pem": pem,
                "created_at": self.created_at,
                "retired_at": self.retired_at,
                "published_until": self.published_until,
            }
        ).encode()

    @classmethod
    def loads(cls, blob: bytes) -> SigningKey:
        data = json.loads(blob)
        key = serialization.load_pem_private_key(data["pem"].encode(), password=None)
        return cls(
            data["kid"], key, data["created_at"], data["retired_at"], data["published_until"]
        )


class KeySet:
    """The emulator's signing keys. Thread-safe; persisted when given a persistence store."""

    def __init__(self, persistence: Any = None) -> None:
        self._lock = threading.Lock()
        self._persistence = persistence
        self._keys: list[SigningKey] = []
        if persistence is not None:
            self._keys = sorted(
                (SigningKey.loads(blob) for _, blob in persistence.load(KIND)),
                key=lambda k: k.created_at,
            )
        if not any(k.retired_at is None for k in self._keys):
            self._add(SigningKey.generate())

    def _add(self, key: SigningKey) -> None:
        self._keys.append(key)
        self._save(key)

    def _save(self, key: SigningKey) -> None:
        if self._persistence is not None:
            self._persistence.save(KIND, key.kid, key.dumps())

    def _active(self) -> SigningKey:
        """The signing key (under the lock: a rotation is one swap, never seen half done)."""
        return next(k for k in reversed(self._keys) if k.retired_at is None)

    @property
    def active(self) -> SigningKey:
        with self._lock:
            return self._active()

    def rotate(self, grace_seconds: float) -> tuple[SigningKey, SigningKey]:
        """Make a new key the signer; the old one stays published for ``grace_seconds``.

        The new key is generated before the lock is taken (it takes tens of milliseconds), so
        tokens minted meanwhile are signed by the old key and never find no signer.
        """
        grace_seconds = check_grace_seconds(grace_seconds)
        new = SigningKey.generate()
        with self._lock:
            old = self._active()
            old.retired_at = time.time()
            old.published_until = old.retired_at + grace_seconds
            self._save(old)
            self._add(new)
        return old, new

    def published(self) -> list[SigningKey]:
        now = time.time()
        with self._lock:
            return [k for k in self._keys if k.published_until is None or k.published_until > now]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.published()]}

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        key = self.active
        return jwt.encode(
            claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": typ}
        )

    def decode(
        self, token: str, *, verify_exp: bool = True, audience: str | None = None
    ) -> dict[str, Any]:
        """Verify a token signed by one of the published keys (raises ``jwt.PyJWTError``)."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in self.published() if k.kid == kid), None)
        if key is None:
            raise jwt.InvalidKeyError(f"unknown kid {kid!r}")
        return jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=audience,
            options={"verify_exp": verify_exp, "verify_aud": audience is not None},
        )

    def reset(self) -> None:
        """Drop every key but the active one (a test reset keeps one stable signer)."""
        with self._lock:
            active = self._active()
            for key in self._keys:
                if key is not active and self._persistence is not None:
                    self._persistence.delete(KIND, key.kid)
            self._keys = [active]
