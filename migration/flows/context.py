from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..conf import app_settings
from ..gateway import Gateway, NotFound, Permanent, Transient
from ..models import ImportRecord

Outcome = ImportRecord.Outcome


@dataclass
class OrganizationRef:
    """What the batch knows about an organization a user names, from this run's ledger."""

    external_id: str
    status: str
    scalekit_id: str = ""
    error: str = ""
    retryable: bool = False


@dataclass
class RoleRef:
    """A role of this run's roles source that did not make it to Scalekit."""

    name: str
    status: str
    error: str = ""
    retryable: bool = False


@dataclass
class FlowContext:
    gateway: Gateway
    send_invitation_email: bool = False
    invite_unverified: bool = False
    organizations: dict[str, OrganizationRef] = field(default_factory=dict)
    existing_roles: set[str] = field(default_factory=set)
    permissions: set[str] | None = None
    unavailable_roles: dict[str, RoleRef] = field(default_factory=dict)
    default_role: str = field(default_factory=lambda: app_settings.DEFAULT_ROLE)
    default_role_found: bool = False
    created_roles: set[str] | None = None

    def invite(self, payload: dict[str, Any]) -> bool:
        if self.send_invitation_email:
            return True
        return self.invite_unverified and not payload.get("email_verified", False)

    def organization_id(self, external_id: str) -> str:
        ref = self.organizations.get(external_id)
        if ref is None:
            raise Permanent(f"organization {external_id!r} is not part of this run", "dependency")
        if ref.status == ImportRecord.Status.SUCCEEDED and ref.scalekit_id:
            return ref.scalekit_id
        reason = f": {ref.error}" if ref.error else ""
        message = f"organization {external_id!r} was not imported ({ref.status}{reason})"
        if ref.status == ImportRecord.Status.FAILED and not ref.retryable:
            raise Permanent(message, "dependency")
        raise Transient(message, "dependency")

    def check_roles(self, names: list[str]) -> None:
        """Refuse a user naming a role of this run that was not created (like organizations):
        Scalekit would ignore it, or refuse the membership, and the user would end without it."""
        for name in names:
            ref = self.unavailable_roles.get(name)
            if ref is None:
                continue
            reason = f": {ref.error}" if ref.error else ""
            message = f"role {name!r} was not imported ({ref.status}{reason})"
            if ref.status == ImportRecord.Status.FAILED and not ref.retryable:
                raise Permanent(message, "dependency")
            raise Transient(message, "dependency")

    def roles_to_send(self, names: list[str]) -> list[str]:
        """The roles a new membership is created with: those the row names, else
        ``DEFAULT_ROLE``. Never none: Scalekit would then make an organization's first member
        admin, and with concurrent workers which user is first is chance."""
        if names:
            return list(names)
        self.check_roles([self.default_role])
        if not self.default_role_found and self.default_role not in self.existing_roles:
            try:
                self.gateway.get_role(self.default_role)
            except NotFound:
                raise Permanent(
                    f"the row names no role and MIGRATION['DEFAULT_ROLE'] = "
                    f"{self.default_role!r} is not a role of Scalekit (create it, define it in "
                    "the roles source, or set DEFAULT_ROLE to an existing role)",
                    "unknown_role",
                ) from None
            self.default_role_found = True
        return [self.default_role]

    def roles_created_by_run(self, run_id: int) -> set[str]:
        """The roles this run created: ``created_roles``, loaded with the batch when one of its
        records is re-checked; read here only for a record that became a re-check while the
        batch was being sent (a retry after a lost answer). ``existing_roles`` cannot tell:
        a resume plans the roles again."""
        if self.created_roles is None:
            from ..batches import ledger_lock, roles_created_by

            with ledger_lock():
                self.created_roles = roles_created_by(run_id)
        return self.created_roles


def created_or_existing(record: ImportRecord, create_time: Any) -> str:
    """Whether an object found in Scalekit was created by this run (by an earlier attempt).

    An object created after this record was first claimed can only come from this run's own
    earlier attempt (a crash or a lost answer); anything older was already there. This relies on
    the clocks of Scalekit and this host agreeing to within the time between two runs.
    """
    if record.first_claimed_at is None or create_time is None or not create_time.seconds:
        return Outcome.EXISTING
    created = datetime.fromtimestamp(create_time.seconds + create_time.nanos / 1e9, tz=UTC)
    return Outcome.CREATED if created >= record.first_claimed_at else Outcome.EXISTING


def succeed(record: ImportRecord, scalekit_id: str, outcome: str) -> None:
    record.status = ImportRecord.Status.SUCCEEDED
    record.scalekit_id = scalekit_id
    record.outcome = outcome
    record.error_code = ""
    record.last_error = ""
    record.retryable = False
    record.recheck = False
