"""A role: created from the source's definition when Scalekit does not have it."""

from __future__ import annotations

from ..gateway import AlreadyExists, NotFound, Permanent
from ..models import ImportRecord
from .context import FlowContext, created_or_existing, succeed

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
    ensure_permissions(record, ctx)
    try:
        role = ctx.gateway.create_role(payload)
    except AlreadyExists:
        role = ctx.gateway.get_role(name)
        succeed(record, role.id, Outcome.EXISTING)
        return
    succeed(record, role.id, Outcome.CREATED)


def ensure_permissions(record: ImportRecord, ctx: FlowContext) -> None:
    """Scalekit refuses a role naming a permission it does not know: create those first.

    The ones this run creates are listed in ``record.result["created_permissions"]`` (saved
    even when the role itself then fails), so a rollback can delete them. Two roles needing
    the same new permission: the one whose create succeeded lists it, the other sees it exist.
    """
    names = record.payload.get("permissions") or []
    if not names:
        return
    if ctx.permissions is None:
        ctx.permissions = ctx.gateway.list_permission_names()
    created = list(record.result.get("created_permissions", []))
    try:
        for name in names:
            if name in created:
                continue
            if name in ctx.permissions:
                if record.recheck and _created_by_earlier_attempt(record, name, ctx):
                    created.append(name)
                continue
            try:
                ctx.gateway.create_permission(name, f"Imported permission {name}")
            except AlreadyExists:
                # An earlier attempt's create may have gone through with its answer lost.
                if record.recheck and _created_by_earlier_attempt(record, name, ctx):
                    created.append(name)
            except Permanent as exc:
                raise Permanent(f"permission {name!r}: {exc.message}", exc.code) from None
            else:
                created.append(name)
            ctx.permissions.add(name)
    finally:
        if created:
            record.result = {**record.result, "created_permissions": created}


def _created_by_earlier_attempt(record: ImportRecord, name: str, ctx: FlowContext) -> bool:
    """A permission an attempt of this record created before its answer (or save) was lost."""
    try:
        permission = ctx.gateway.get_permission(name)
    except NotFound:
        return False
    return created_or_existing(record, permission.create_time) == Outcome.CREATED
