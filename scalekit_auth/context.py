"""``request.scalekit``: who the request is, as Scalekit's tokens say, with no database query."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The claims kept in the session for request.scalekit (the tokens themselves are kept apart).
CONTEXT_CLAIMS = ("sub", "oid", "sid", "roles", "permissions", "xuid", "xoid", "exp", "scope")


@dataclass(frozen=True)
class ScalekitContext:
    """The identity of a request authenticated by Scalekit (or an anonymous one)."""

    user_id: str = ""
    organization_id: str = ""
    session_id: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    permissions: frozenset[str] = field(default_factory=frozenset)
    external_user_id: str = ""
    external_organization_id: str = ""
    expires_at: int = 0
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> ScalekitContext:
        return cls(
            user_id=claims.get("sub", ""),
            organization_id=claims.get("oid", ""),
            session_id=claims.get("sid", ""),
            roles=frozenset(claims.get("roles") or ()),
            permissions=frozenset(claims.get("permissions") or ()),
            external_user_id=claims.get("xuid", ""),
            external_organization_id=claims.get("xoid", ""),
            expires_at=int(claims.get("exp", 0)),
            claims=claims,
        )

    @property
    def is_authenticated(self) -> bool:
        return bool(self.user_id)

    def has_role(self, *roles: str) -> bool:
        """True when the caller has at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def has_permissions(self, *permissions: str) -> bool:
        """True when the caller has every one of ``permissions``."""
        return self.permissions.issuperset(permissions)


ANONYMOUS = ScalekitContext()


def context_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {name: claims[name] for name in CONTEXT_CLAIMS if name in claims}
