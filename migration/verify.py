"""Reconcile a run with Scalekit: every succeeded record, read back and compared.

Roles must exist; organizations must exist with the same external id and display name; users
must exist with the same email (case-insensitively) and external id, and be members of every
organization the source names, and every role they name must exist in Scalekit (a membership can
hold a role name Scalekit does not define, which then grants nothing; Scalekit's roles are listed
once per verify). A membership the run created must hold exactly the roles the source names (or
``DEFAULT_ROLE``, as set when verifying, when it names none; a role beyond those, such as the admin role Scalekit gives an
organization's first member, is a difference); one that was already there must hold at least
them (roles it had are kept). Each mismatch is stored as a ``VerificationDifference`` (the
previous ones of the run are replaced).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from .batches import build_gateway, ledger_lock
from .conf import app_settings
from .gateway import Fatal, Gateway, NotFound, ScalekitCallError, memberships_of
from .models import ImportRecord, ImportRun, VerificationDifference
from .runner import with_retries

Kind = ImportRecord.Kind
CHUNK = 200


@dataclass
class Difference:
    record_id: int
    kind: str
    key: str
    field: str
    expected: str
    actual: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class VerifyReport:
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)


def _chunks(run: ImportRun) -> Iterator[list[ImportRecord]]:
    last = 0
    while True:
        with ledger_lock():
            chunk = list(
                run.records.filter(status=ImportRecord.Status.SUCCEEDED, id__gt=last).order_by(
                    "id"
                )[:CHUNK]
            )
        if not chunk:
            return
        last = chunk[-1].pk
        yield chunk


def check_record(
    record: ImportRecord,
    gateway: Gateway,
    organizations: dict[str, str],
    roles: set[str] | None = None,
    default_role: str | None = None,
) -> list[Difference]:
    """The differences of one record; ``roles``: the role names Scalekit has (None: unchecked);
    ``default_role``: what a membership naming no role was given (``DEFAULT_ROLE``)."""

    def diff(name: str, expected: Any, actual: Any) -> Difference:
        return Difference(record.pk, record.kind, record.key, name, str(expected), str(actual))

    payload = record.payload
    try:
        if record.kind == Kind.ROLE:
            gateway.get_role(payload["name"])
            return []
        if record.kind == Kind.ORGANIZATION:
            organization = gateway.get_organization(record.scalekit_id)
            found = []
            if organization.external_id != payload["external_id"]:
                found.append(diff("external_id", payload["external_id"], organization.external_id))
            if organization.display_name != payload["display_name"]:
                found.append(
                    diff("display_name", payload["display_name"], organization.display_name)
                )
            return found
        user = gateway.get_user(record.scalekit_id)
    except NotFound:
        return [diff("exists", f"{record.kind} {record.scalekit_id}", "not found in Scalekit")]
    except Fatal:
        raise
    except ScalekitCallError as exc:
        return [diff("readable", "an answer from Scalekit", f"{exc.code}: {exc.message}")]
    found = []
    if user.email.lower() != payload["email"].lower():
        found.append(diff("email", payload["email"], user.email))
    if payload.get("external_id") and user.external_id != payload["external_id"]:
        found.append(diff("external_id", payload["external_id"], user.external_id))
    default_role = default_role or app_settings.DEFAULT_ROLE
    current = memberships_of(user)
    created = set(record.result.get("created_memberships", []))
    expected: dict[str, tuple[str, list[str], bool]] = {}
    for membership in payload["memberships"]:
        organization_id = organizations.get(membership["organization"], "")
        by_run = record.outcome == ImportRecord.Outcome.CREATED or organization_id in created
        wanted = list(membership["roles"]) or ([default_role] if by_run else [])
        expected[membership["organization"]] = (organization_id, wanted, by_run)
    if roles is not None:
        named = dict.fromkeys(role for _, wanted, _ in expected.values() for role in wanted)
        for role in named:
            if role not in roles:
                found.append(diff(f"role[{role}]", "a role of Scalekit", "not found in Scalekit"))
    for organization, (organization_id, wanted, by_run) in expected.items():
        if organization_id not in current:
            found.append(diff(f"membership[{organization}]", "member", "not a member"))
            continue
        held = current[organization_id]
        missing = [role for role in wanted if role not in held]
        extra = held - set(wanted) if by_run else set()
        if missing or extra:
            found.append(diff(f"roles[{organization}]", ",".join(wanted), ",".join(sorted(held))))
    return found


def verify(
    run: ImportRun,
    *,
    concurrency: int | None = None,
    gateway: Gateway | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check every succeeded record of ``run``; ``progress(n)`` after each chunk of ``n``.

    Raises ``Fatal`` when Scalekit refuses the credentials (nothing is stored then).
    """
    gateway = gateway or build_gateway(run)
    workers = concurrency or int(run.options.get("concurrency") or app_settings.CONCURRENCY)
    roles = {role.name for role in with_retries(gateway.list_roles)}
    default_role = app_settings.DEFAULT_ROLE
    with ledger_lock():
        organizations = dict(
            run.records.filter(
                kind=Kind.ORGANIZATION, status=ImportRecord.Status.SUCCEEDED
            ).values_list("key", "scalekit_id")
        )
    report = VerifyReport()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migration-verify") as pool:
        for chunk in _chunks(run):
            checked = pool.map(
                lambda r: check_record(r, gateway, organizations, roles, default_role), chunk
            )
            for differences in checked:
                report.differences.extend(differences)
            report.checked += len(chunk)
            if progress:
                progress(len(chunk))
    with ledger_lock():
        VerificationDifference.objects.filter(run=run).delete()
        VerificationDifference.objects.bulk_create(
            [
                VerificationDifference(
                    run=run,
                    record_id=d.record_id,
                    kind=d.kind,
                    key=d.key[:520],
                    field=d.field[:100],
                    expected=d.expected,
                    actual=d.actual,
                )
                for d in report.differences
            ],
            batch_size=500,
        )
        run.verified_at = timezone.now()
        run.differences = len(report.differences)
        run.save(update_fields=["verified_at", "differences"])
    return report
