"""A user with every membership and role the source gives it.

Created with ``create_user_and_membership`` in the first organization, then
``create_membership`` for each other one. A user Scalekit already has (found by external id,
then by email) is not skipped: its missing memberships are created and missing roles added, so
the user always ends with everything the source asks for. Roles it has beyond that are kept.

A membership the run creates for a row that names no role gets ``MIGRATION['DEFAULT_ROLE']``,
sent explicitly (see ``FlowContext.roles_to_send``).

What the run changes on a user it did not create is written to ``record.result`` for
``migration_rollback``: ``created_memberships`` (organization ids), ``added_roles``
(``{organization id: [role names]}`` added to memberships that were already there) and
``previous_external_id`` (the user had none and the run set it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..gateway import (
    AlreadyExists,
    NotFound,
    Permanent,
    ScalekitCallError,
    Transient,
    memberships_of,
)
from ..models import ImportRecord
from .context import FlowContext, created_or_existing, succeed

Outcome = ImportRecord.Outcome


@contextmanager
def step(user: Any, what: str) -> Iterator[None]:
    """Name the step in the error of a call made once the user is in Scalekit: the record
    fails with its user there (created by this run, perhaps: outcome ``created``), and its
    last error says which step is left (``UNAVAILABLE: ...`` alone did not)."""
    try:
        yield
    except ScalekitCallError as exc:
        exc.message = f"user {user.id} is in Scalekit, but {what} failed: {exc.message}"
        exc.args = (exc.message,)
        raise


def organization_name(ctx: FlowContext, organization_id: str) -> str:
    """``'acme' (org_123)``: the source's external id, then the Scalekit id."""
    for external_id, ref in ctx.organizations.items():
        if ref.scalekit_id == organization_id:
            return f"{external_id!r} ({organization_id})"
    return organization_id


def find_user(payload: dict[str, Any], ctx: FlowContext, *, expected: bool = False) -> Any | None:
    """The Scalekit user of this row: by external id, then by email. ``expected``: Scalekit
    just refused it as a duplicate, so it exists (see ``Gateway.find_user_by_email``)."""
    if payload.get("external_id"):
        user = ctx.gateway.find_user_by_external_id(payload["external_id"])
        if user is not None:
            return user
    return ctx.gateway.find_user_by_email(payload["email"], expected=expected)


def import_user(record: ImportRecord, ctx: FlowContext) -> None:
    payload = record.payload
    invite = ctx.invite(payload)
    ctx.check_roles([role for m in payload["memberships"] for role in m["roles"]])
    targets = [
        (ctx.organization_id(m["organization"]), list(m["roles"])) for m in payload["memberships"]
    ]

    user = None
    outcome = record.outcome or Outcome.EXISTING
    if record.scalekit_id and record.status == ImportRecord.Status.IN_FLIGHT:
        # An earlier attempt of this claim got as far as creating or finding the user.
        try:
            user = ctx.gateway.get_user(record.scalekit_id)
        except NotFound:
            user = None
    if user is None and record.recheck:
        user = find_user(payload, ctx)
        if user is not None:
            outcome = created_or_existing(record, user.create_time)
    if user is None:
        first_org, first_roles = targets[0]
        try:
            user = ctx.gateway.create_user(
                first_org, payload, ctx.roles_to_send(first_roles), invite=invite
            )
            outcome = Outcome.CREATED
        except AlreadyExists as exc:
            user = find_user(payload, ctx, expected=True)
            if user is None:
                raise Permanent(
                    f"Scalekit refused the user as a duplicate ({exc.message}) but no user has "
                    f"external id {payload.get('external_id')!r} or email {payload['email']!r}",
                    "conflict",
                ) from None
            outcome = created_or_existing(record, user.create_time)
    record.scalekit_id = user.id
    record.outcome = outcome

    user, outcome = reconcile_identity(record, user, payload, outcome, ctx)
    user, outcome = reconcile_memberships(record, user, targets, outcome, invite, ctx)
    succeed(record, user.id, outcome)


def reconcile_identity(
    record: ImportRecord, user: Any, payload: dict[str, Any], outcome: str, ctx: FlowContext
) -> tuple[Any, str]:
    if user.email.lower() != payload["email"].lower():
        raise Permanent(
            f"external id {payload['external_id']!r} belongs to Scalekit user {user.id} with "
            f"email {user.email!r}, not {payload['email']!r}",
            "identity_conflict",
        )
    wanted = payload.get("external_id") or ""
    if wanted and user.external_id != wanted:
        if user.external_id:
            raise Permanent(
                f"email {payload['email']!r} belongs to Scalekit user {user.id} with external id "
                f"{user.external_id!r}, not {wanted!r}",
                "identity_conflict",
            )
        setting = f"setting its external id {wanted!r}"
        if outcome == Outcome.CREATED:
            with step(user, setting):
                return ctx.gateway.set_user_external_id(user.id, wanted), outcome
        record.result = {**record.result, "previous_external_id": ""}
        try:
            with step(user, setting):
                user = ctx.gateway.set_user_external_id(user.id, wanted)
        except Transient:
            raise  # it may have gone through with its answer lost: it stays in the ledger
        except ScalekitCallError:
            record.result = {k: v for k, v in record.result.items() if k != "previous_external_id"}
            raise
        outcome = Outcome.UPDATED
    return user, outcome


def reconcile_memberships(
    record: ImportRecord,
    user: Any,
    targets: list[tuple[str, list[str]]],
    outcome: str,
    invite: bool,
    ctx: FlowContext,
) -> tuple[Any, str]:
    if record.recheck and outcome != Outcome.CREATED:
        note_earlier_attempts(record, user, targets, ctx)
    current = memberships_of(user)
    for organization_id, roles in targets:
        organization = organization_name(ctx, organization_id)
        if organization_id not in current:
            try:
                with step(user, f"adding it to organization {organization}"):
                    user = ctx.gateway.create_membership(
                        organization_id, user.id, ctx.roles_to_send(roles), invite=invite
                    )
            except AlreadyExists:
                with step(user, "reading it back"):
                    user = ctx.gateway.get_user(user.id)
            else:
                if outcome != Outcome.CREATED:
                    record_created_membership(record, organization_id)
            if outcome != Outcome.CREATED:
                outcome = Outcome.UPDATED
            current = memberships_of(user)
            if organization_id not in current:
                # Some answers carry no memberships: ask for the user as Scalekit now has it.
                with step(user, "reading it back"):
                    user = ctx.gateway.get_user(user.id)
                current = memberships_of(user)
        have = current.get(organization_id, set())
        missing = [role for role in roles if role not in have]
        if missing:
            wanted = sorted(have) + missing
            noted = outcome != Outcome.CREATED and organization_id not in record.result.get(
                "created_memberships", []
            )
            if noted:
                record_added_roles(record, organization_id, missing)
            try:
                with step(user, f"giving it role(s) {', '.join(missing)} in {organization}"):
                    user = ctx.gateway.update_membership_roles(organization_id, user.id, wanted)
            except Transient:
                raise  # it may have gone through with its answer lost: it stays in the ledger
            except ScalekitCallError:
                if noted:
                    forget_added_roles(record, organization_id, missing)
                raise
            current = memberships_of(user)
            if organization_id not in current:
                current[organization_id] = set(wanted)
            if outcome != Outcome.CREATED:
                outcome = Outcome.UPDATED
    return user, outcome


def note_earlier_attempts(
    record: ImportRecord, user: Any, targets: list[tuple[str, list[str]]], ctx: FlowContext
) -> None:
    """On a re-check, claim what an earlier attempt of this run did before its answer (and the
    ledger write) was lost.

    A membership created after this record was first claimed was added by that attempt (same
    clock rule as for users). Roles carry no time of assignment, so on a membership that was
    already there only the roles this run created are claimed: nobody else can have given
    them. A role that existed before the run and was added by a lost attempt cannot be told
    from one the user already had, and is left alone (a rollback keeps it; it can still
    delete the roles it created).
    """
    wanted = dict(targets)
    for membership in user.memberships:
        organization_id = membership.organization_id
        if organization_id not in wanted:
            continue
        if created_or_existing(record, membership.created_at) == Outcome.CREATED:
            record_created_membership(record, organization_id)
            continue
        if organization_id in record.result.get("created_memberships", []):
            continue
        names = {role.name for role in membership.roles}
        held = [role for role in wanted[organization_id] if role in names]
        ours = held and [r for r in held if r in ctx.roles_created_by_run(record.run_id)]
        if ours:
            record_added_roles(record, organization_id, ours)


def record_created_membership(record: ImportRecord, organization_id: str) -> None:
    """Note a membership this run added to a user it did not create, as soon as it exists.

    Written on the record at once (not when the flow ends) so that a later step that fails
    still leaves it in the ledger for ``migration_rollback``.
    """
    added = list(record.result.get("created_memberships", []))
    if organization_id not in added:
        record.result = {**record.result, "created_memberships": [*added, organization_id]}


def record_added_roles(record: ImportRecord, organization_id: str, roles: list[str]) -> None:
    """Note roles this run adds to a membership that was already there, before the call that
    adds them (kept when that call's answer is lost), so a rollback takes them off again."""
    added = {k: list(v) for k, v in record.result.get("added_roles", {}).items()}
    names = added.setdefault(organization_id, [])
    names.extend(role for role in roles if role not in names)
    record.result = {**record.result, "added_roles": added}


def forget_added_roles(record: ImportRecord, organization_id: str, roles: list[str]) -> None:
    """Scalekit refused the change: those roles were not added."""
    added = {k: list(v) for k, v in record.result.get("added_roles", {}).items()}
    left = [role for role in added.get(organization_id, []) if role not in roles]
    if left:
        added[organization_id] = left
    else:
        added.pop(organization_id, None)
    result = {k: v for k, v in record.result.items() if k != "added_roles"}
    record.result = {**result, "added_roles": added} if added else result
