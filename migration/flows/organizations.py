"""An organization: created, or found by external id when Scalekit already has it."""

from __future__ import annotations

from ..gateway import AlreadyExists, Permanent
from ..models import ImportRecord
from .context import FlowContext, created_or_existing, succeed

Outcome = ImportRecord.Outcome


def import_organization(record: ImportRecord, ctx: FlowContext) -> None:
    payload = record.payload
    external_id = payload["external_id"]
    if record.recheck:
        found = ctx.gateway.find_organization(external_id)
        if found is not None:
            succeed(record, found.id, created_or_existing(record, found.create_time))
            return
    try:
        organization = ctx.gateway.create_organization(payload)
    except AlreadyExists as exc:
        found = ctx.gateway.find_organization(external_id)
        if found is None:
            raise Permanent(
                f"Scalekit refused the organization as a duplicate ({exc.message}) but has none "
                f"with external id {external_id!r}",
                "conflict",
            ) from None
        succeed(record, found.id, created_or_existing(record, found.create_time))
        return
    succeed(record, organization.id, Outcome.CREATED)
