"""The sign-off flow: sign off, revoke, mark (not) applicable, change owner or evidence.

Every function checks the actor's permission, refuses with a ``SignOffError`` that says exactly
why, writes an append-only ``ItemEvent`` and an admin ``LogEntry``, and refreshes the item.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from .catalogue import SILENCED_CHECKS_WAIVER
from .models import ChecklistItem, ItemEvent, Section, SignOff, SignOffRevocation
from .status import (
    blocking_sections,
    current_digests,
    current_fingerprint,
    failing_checks,
    is_automated_blocker,
    latest_signoff,
    refresh_item,
    refresh_waived_items,
    section_snapshot,
    signoff_covers,
    signoff_problem,
)

SIGN_OFF_PERMISSION = "readiness.sign_off_item"
NA_PERMISSION = "readiness.mark_not_applicable"


class SignOffError(ValueError):
    """A sign-off action that cannot be done; the message says why and what to do."""


def display_name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()  # type: ignore[attr-defined]


def _require(user: AbstractBaseUser, permission: str, action: str) -> None:
    if not user.is_active or not user.has_perm(permission):  # type: ignore[attr-defined]
        raise SignOffError(
            f"{display_name(user)} may not {action}: the {permission} permission is needed."
        )


def _log(user: AbstractBaseUser, obj: ChecklistItem | Section, message: str) -> None:
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _event(
    item: ChecklistItem, user: AbstractBaseUser, action: str, message: str, **data: object
) -> None:
    ItemEvent.objects.create(
        item=item,
        actor=user,
        actor_name=display_name(user),
        action=action,
        from_status=item.status,
        to_status=item.status,
        message=message,
        data=data,
    )


@transaction.atomic
def sign_off(
    item: ChecklistItem,
    user: AbstractBaseUser,
    *,
    signer_role: str = "",
    environment: str = "",
    release: str = "",
    evidence_url: str = "",
    notes: str = "",
    expires_at: datetime | None = None,
) -> SignOff:
    """Record ``user``'s attestation of ``item``."""
    _require(user, SIGN_OFF_PERMISSION, f"sign off {item.key}")
    item = ChecklistItem.objects.select_for_update().select_related("section").get(pk=item.pk)
    if item.kind == ChecklistItem.Kind.AUTO:
        raise SignOffError(
            f"{item.key} is proven by its automated checks only; it cannot be signed "
            "off. Fix what the checks report and run them again."
        )
    if item.retired:
        raise SignOffError(f"{item.key} is no longer in the catalogue.")
    if item.not_applicable or item.section.not_applicable:
        raise SignOffError(f"{item.key} is marked not applicable; mark it applicable first.")
    blocking = blocking_sections(item.section)
    if blocking:
        first = blocking[0]
        keys = ", ".join(i.key for i in first.open_blockers[:5])
        raise SignOffError(
            f"{item.key} cannot be signed off yet: section '{first.section.title}' "
            f"comes first and has open blockers ({keys})."
        )
    if not (evidence_url or notes or item.evidence_text or item.evidence_url):
        raise SignOffError(
            f"{item.key} needs evidence to be signed off: a link or notes "
            f"({item.evidence_hint or 'what proves it'})."
        )
    if evidence_url:
        try:
            URLValidator(schemes=["https", "http"])(evidence_url)
        except ValidationError as exc:
            raise SignOffError(f"The evidence link {evidence_url!r} is not a valid URL.") from exc
    signoff = SignOff.objects.create(
        item=item,
        signed_by=user,
        signer_name=display_name(user),
        signer_role=signer_role or item.signer_role,
        environment=environment,
        release=release,
        evidence_url=evidence_url or item.evidence_url,
        evidence_text=item.evidence_text,
        notes=notes,
        expires_at=expires_at,
        fingerprint=current_fingerprint(item),
        digests=current_digests(item),
        covers=signoff_covers(item),
    )
    _event(
        item,
        user,
        ItemEvent.Action.SIGNED_OFF,
        f"Signed off by {signoff.signer_name}"
        + (f" ({signoff.signer_role})" if signoff.signer_role else ""),
        signoff=signoff.pk,
        environment=environment,
        release=release,
        covers=signoff.covers,
    )
    refresh_item(item, actor=user, reason=f"signed off by {signoff.signer_name}")
    if item.key == SILENCED_CHECKS_WAIVER:
        refresh_waived_items(
            actor=user,
            reason=f"waivers signed off in {item.key} by {signoff.signer_name} "
            f"(sign-off #{signoff.pk})",
        )
    _log(user, item, f"Signed off {item.key} (sign-off #{signoff.pk}).")
    return signoff


@transaction.atomic
def revoke(signoff: SignOff, user: AbstractBaseUser, reason: str) -> SignOffRevocation:
    _require(user, SIGN_OFF_PERMISSION, f"revoke sign-offs of {signoff.item.key}")
    if not reason.strip():
        raise SignOffError("Say why the sign-off is revoked.")
    if SignOffRevocation.objects.filter(signoff=signoff).exists():
        raise SignOffError(f"Sign-off #{signoff.pk} of {signoff.item.key} is already revoked.")
    revocation = SignOffRevocation.objects.create(
        signoff=signoff, revoked_by=user, revoked_by_name=display_name(user), reason=reason.strip()
    )
    item = signoff.item
    _event(
        item,
        user,
        ItemEvent.Action.REVOKED,
        f"Sign-off #{signoff.pk} revoked: {reason.strip()}",
        signoff=signoff.pk,
    )
    refresh_item(item, actor=user, reason=f"sign-off revoked: {reason.strip()}")
    if item.key == SILENCED_CHECKS_WAIVER:
        refresh_waived_items(
            actor=user,
            reason=f"waiver sign-off #{signoff.pk} in {item.key} revoked: {reason.strip()}",
        )
    _log(user, item, f"Revoked sign-off #{signoff.pk} of {item.key}: {reason.strip()}")
    return revocation


def revoke_latest(item: ChecklistItem, user: AbstractBaseUser, reason: str) -> SignOffRevocation:
    signoff = latest_signoff(item)
    if signoff is None or signoff_problem(signoff, item) == "revoked":
        raise SignOffError(f"{item.key} has no sign-off to revoke.")
    return revoke(signoff, user, reason)


@transaction.atomic
def set_item_applicable(
    item: ChecklistItem, user: AbstractBaseUser, applicable: bool, reason: str = ""
) -> ChecklistItem:
    _require(user, NA_PERMISSION, f"change whether {item.key} applies")
    if not applicable and not reason.strip():
        raise SignOffError(f"Say why {item.key} does not apply to this project.")
    if applicable == (not item.not_applicable):
        raise SignOffError(
            f"{item.key} is already {'applicable' if applicable else 'not applicable'}."
        )
    if not applicable and is_automated_blocker(item):
        waiver = " or sign off a waiver" if item.kind == ChecklistItem.Kind.HYBRID else ""
        raise SignOffError(
            f"{item.key} is a blocker proven by automated checks; it cannot be marked not "
            f"applicable. Fix what its checks report{waiver}. If the feature is not used, mark "
            "its whole section not applicable once its checks pass (that holds only while they "
            "pass and its settings stay as they are)."
        )
    item.not_applicable = not applicable
    item.na_reason = "" if applicable else reason.strip()
    item.save(update_fields=["not_applicable", "na_reason", "updated_at"])
    action = ItemEvent.Action.APPLICABLE if applicable else ItemEvent.Action.NOT_APPLICABLE
    message = "Applies again" if applicable else f"Not applicable: {reason.strip()}"
    _event(item, user, action, message)
    refresh_item(item, actor=user, reason=message)
    _log(user, item, f"{item.key}: {message}")
    return item


@transaction.atomic
def set_section_applicable(
    section: Section, user: AbstractBaseUser, applicable: bool, reason: str = ""
) -> Section:
    _require(user, NA_PERMISSION, f"change whether section '{section.title}' applies")
    if not applicable and not reason.strip():
        raise SignOffError(f"Say why section '{section.title}' does not apply to this project.")
    if not applicable:
        _refuse_failing_blockers(section)
    section.not_applicable = not applicable
    section.na_reason = "" if applicable else reason.strip()
    section.na_snapshot = {} if applicable else section_snapshot(section)
    section.save(update_fields=["not_applicable", "na_reason", "na_snapshot"])
    message = (
        "Section applies again"
        if applicable
        else f"Section '{section.title}' not applicable: {reason.strip()}"
    )
    for item in section.items.filter(retired=False):
        _event(
            item,
            user,
            ItemEvent.Action.APPLICABLE if applicable else ItemEvent.Action.NOT_APPLICABLE,
            message,
        )
        refresh_item(item, actor=user, reason=message)
    _log(user, section, message)
    return section


def _refuse_failing_blockers(section: Section) -> None:
    """A section is not marked not applicable over failing automated blockers: that would hide
    them, which marking them one by one is refused for (see ``set_item_applicable``)."""
    failing = []
    for item in section.items.filter(retired=False).select_related("section").order_by("order"):
        if is_automated_blocker(item):
            checks = failing_checks(item)
            if checks:
                ids = ", ".join(sorted({r.probe_id.split(".")[1] for r in checks}))
                failing.append(f"{item.key} ({ids})")
    if failing:
        raise SignOffError(
            f"Section '{section.title}' cannot be marked not applicable while its automated "
            f"blockers fail: {'; '.join(failing)}. Fix what their checks report (or sign off a "
            "waiver of a hybrid item) and run the checks again; a not-applicable section never "
            "hides a failing blocker."
        )


def record_item_edit(item: ChecklistItem, before: dict, user: AbstractBaseUser) -> list[str]:
    """History events for owner and evidence edits made in the admin's change form."""
    changed = []
    if before.get("owner_id") != item.owner_id:
        owner = display_name(item.owner) if item.owner else "nobody"
        _event(item, user, ItemEvent.Action.OWNER, f"Owner set to {owner}")
        changed.append("owner")
    if (before.get("evidence_text"), before.get("evidence_url")) != (
        item.evidence_text,
        item.evidence_url,
    ):
        _event(
            item,
            user,
            ItemEvent.Action.EVIDENCE,
            "Evidence updated",
            evidence_url=item.evidence_url,
        )
        changed.append("evidence")
    return changed
