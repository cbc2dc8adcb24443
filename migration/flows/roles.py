"""A role: created from the source's definition when Scalekit does not have it."""

from __future__ import annotations

from ..gateway import AlreadyExists, NotFound, Permanent
from ..models import ImportRecord
from .context import FlowContext, succeed

Outcome = ImportRecord.Outcome


def import_role(record: ImportRecord, ctx: FlowContext) -> None:
    payload = record.payload
    name = payload["name"]
    if name in ctx.existing_roles:
        role = ctx.gateway.get_role(name)
        succeed(record, role.id, Outcome.EXISTING)
        return
    if record.recheck:
        # Roles are only sent when the planning step found them missing, so a role that is
        # there now was created by this run's earlier attempt.
        try:
            role = ctx.gateway.get_role(name)
        except NotFound:
            pass
        else:
            succeed(record, role.id, Outcome.CREATED)
            return
    ensure_permissions(payload.get("permissions") or [], ctx)
    try:
        role = ctx.gateway.create_role(payload)
    except AlreadyExists:
        role = ctx.gateway.get_role(name)
        succeed(record, role.id, Outcome.EXISTING)
        return
    succeed(record, role.id, Outcome.CREATED)


def ensure_permissions(names: list[str], ctx: FlowContext) -> None:
    """Scalekit refuses a role naming a permission it does not know: create those first."""
    if not names:
        return
    if ctx.permissions is None:
        ctx.permissions = ctx.gateway.list_permission_names()
    for name in names:
        if name in ctx.permissions:
            continue
        try:
            ctx.gateway.create_permission(name, f"Imported permission {name}")
        except AlreadyExists:
            pass
        except Permanent as exc:
            raise Permanent(f"permission {name!r}: {exc.message}", exc.code) from None
        ctx.permissions.add(name)
