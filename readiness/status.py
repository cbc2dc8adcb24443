"""How an item's status follows from its probes, sign-offs and applicability; section progress.

An item is *not applicable* when it or its section is marked so (for an automated blocker, only
while its section's snapshot still holds, see ``section_covers``); *signed off* when it may be
signed off (manual or hybrid) and has an active sign-off (not revoked, not expired, not stale);
otherwise an automated item is *passing* or *failing* by the latest result of each of its probes,
and anything else is *to do*.

A sign-off or a not-applicable section vouches for what it saw: a digest of each setting the item
depends on, and, for checks, the failures present then. It goes stale when one of those settings
changes or a failure it did not see appears.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from .catalogue import SILENCED_CHECKS_WAIVER
from .fingerprints import changed_settings, fingerprint, setting_digests
from .models import ChecklistItem, CheckResult, ItemEvent, ItemStatus, Section, SignOff
from .registry import BAD_OUTCOMES, ERROR, FAIL, PASS, SKIP, WAIVED, WARN, Probe, all_probes

#: From worst to best; an item's outcome is the worst of its probes' latest outcomes.
OUTCOME_ORDER = (ERROR, FAIL, WAIVED, WARN, PASS, SKIP)
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


def probes_for(item_key: str) -> list[Probe]:
    return [p for p in all_probes() if p.item == item_key]


def item_reads(item: ChecklistItem) -> list[str]:
    """The settings an item depends on: its own watches and what its probes read."""
    paths = list(item.watches or [])
    for p in probes_for(item.key):
        paths.extend(p.reads)
    return paths


def current_fingerprint(item: ChecklistItem) -> str:
    return fingerprint(item_reads(item))


def current_digests(item: ChecklistItem) -> dict[str, str]:
    return setting_digests(item_reads(item))


def is_automated_blocker(item: ChecklistItem) -> bool:
    """A blocker proven by probes (automated or hybrid): never waived without a check."""
    return item.kind != ChecklistItem.Kind.MANUAL and item.is_blocker


def failure_keys(results: Iterable[CheckResult]) -> list[str]:
    """Stable names of what is failing in ``results``.

    A Django deploy probe names the Django checks it failed on (``readiness.E034:security.W008``);
    any other probe is named with a digest of its message, numbers blanked so that a latency or a
    count does not make a new failure of the same finding.
    """
    keys: set[str] = set()
    for result in results:
        if result.status not in BAD_OUTCOMES:
            continue
        evidence = result.evidence if isinstance(result.evidence, dict) else {}
        django_ids = [
            str(line).split(":", 1)[0]
            for name in ("failing", "waived")
            for line in evidence.get(name) or []
        ]
        if django_ids:
            keys.update(f"{result.probe_id}:{django_id}" for django_id in django_ids)
        else:
            text = _NUMBER_RE.sub("#", result.message)
            keys.add(f"{result.probe_id}:{hashlib.sha256(text.encode()).hexdigest()[:8]}")
    return sorted(keys)


def signoff_covers(item: ChecklistItem) -> list[str]:
    """What a sign-off given now vouches for (stored on the sign-off)."""
    if item.key == SILENCED_CHECKS_WAIVER:
        return sorted(set(settings.SILENCED_SYSTEM_CHECKS))
    if item.kind == ChecklistItem.Kind.HYBRID:
        return failure_keys(latest_results(item))
    return []


def staleness(
    digests: dict[str, str], covered: Iterable[str], item: ChecklistItem, *, checks: bool
) -> str:
    """Why an attestation made with ``digests`` (and, with ``checks``, seeing the failures
    ``covered``) no longer holds for ``item``; "" while it does."""
    changed = changed_settings(digests or {})
    if changed:
        return ", ".join(changed) + " changed"
    if checks:
        new = sorted(set(failure_keys(latest_results(item))) - set(covered))
        if new:
            return "new failing check " + ", ".join(new)
    return ""


def signoff_staleness(signoff: SignOff, item: ChecklistItem | None = None) -> str:
    item = item or signoff.item
    return staleness(
        signoff.digests,
        signoff.covers,
        item,
        checks=item.kind == ChecklistItem.Kind.HYBRID,
    )


def signoff_problem(signoff: SignOff, item: ChecklistItem | None = None) -> str:
    """Why a sign-off no longer counts ("revoked", "expired", "stale"), or "" when it does."""
    item = item or signoff.item
    if hasattr(signoff, "revocation"):
        return "revoked"
    if signoff.expires_at and signoff.expires_at <= timezone.now():
        return "expired"
    if signoff_staleness(signoff, item):
        return "stale"
    return ""


def section_snapshot(section: Section) -> dict[str, dict]:
    """What marking ``section`` not applicable vouches for, per automated blocker."""
    return {
        item.key: {
            "failing": failure_keys(latest_results(item)),
            "digests": current_digests(item),
        }
        for item in section.items.filter(retired=False)
        if is_automated_blocker(item)
    }


def section_covers(item: ChecklistItem) -> str:
    """Why ``item``'s not-applicable section no longer covers it ("" while it does).

    Any item but an automated blocker is covered. An automated blocker is covered only while the
    snapshot taken when the section was marked holds: same settings, no new failure.
    """
    if not is_automated_blocker(item):
        return ""
    snapshot = (item.section.na_snapshot or {}).get(item.key)
    if snapshot is None:
        return "it was not in the section when the section was marked not applicable"
    return staleness(snapshot.get("digests", {}), snapshot.get("failing", []), item, checks=True)


def latest_signoff(item: ChecklistItem) -> SignOff | None:
    return item.signoffs.select_related("revocation").order_by("-signed_at", "-pk").first()


def active_signoff(item: ChecklistItem) -> SignOff | None:
    signoff = latest_signoff(item)
    if signoff is None or signoff_problem(signoff, item):
        return None
    return signoff


def latest_results(item: ChecklistItem) -> list[CheckResult]:
    """The newest stored result of each probe of the item."""
    seen: dict[str, CheckResult] = {}
    for result in item.results.order_by("-run__started_at", "-pk")[:200]:
        seen.setdefault(result.probe_id, result)
    current = {p.id for p in probes_for(item.key)}
    return [r for pid, r in seen.items() if pid in current]


def fold_outcome(results: Iterable[CheckResult]) -> tuple[str, str]:
    """The worst outcome of ``results`` and the messages that made it so."""
    results = list(results)
    for outcome in OUTCOME_ORDER:
        hits = [r for r in results if r.status == outcome]
        if hits:
            return outcome, " ".join(f"[{r.probe_id.split('.')[1]}] {r.message}" for r in hits)
    return "", ""


def derive_status(item: ChecklistItem, signoff: SignOff | None) -> str:
    if item.section.not_applicable and not section_covers(item):
        return ItemStatus.NOT_APPLICABLE
    if item.not_applicable and not is_automated_blocker(item):
        return ItemStatus.NOT_APPLICABLE
    if item.kind != ChecklistItem.Kind.AUTO and signoff is not None:
        return ItemStatus.SIGNED_OFF
    if item.kind != ChecklistItem.Kind.MANUAL and item.last_outcome not in ("", SKIP):
        return ItemStatus.FAILING if item.last_outcome in BAD_OUTCOMES else ItemStatus.PASSING
    return ItemStatus.TODO


def refresh_item(
    item: ChecklistItem,
    *,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    context: str = "",
) -> bool:
    """Recompute the item's outcome and status; write a history event when the status changes.

    ``reason`` explains the change (by default the probes' messages or the sign-off that lapsed);
    ``context`` prefixes it, e.g. "check run #12".
    """
    before = item.status
    item.last_outcome, item.last_message = fold_outcome(latest_results(item))
    signoff = active_signoff(item)
    item.status = derive_status(item, signoff)
    item.signed_off_by = signoff.signed_by if signoff else None
    item.signed_off_at = signoff.signed_at if signoff else None
    item.save(
        update_fields=[
            "last_outcome",
            "last_message",
            "status",
            "signed_off_by",
            "signed_off_at",
            "updated_at",
        ]
    )
    if item.status == before:
        return False
    if not reason:
        reason = _lapse(item) or item.last_message
    if context:
        reason = f"{context}: {reason}" if reason else context
    ItemEvent.objects.create(
        item=item,
        actor=actor,
        actor_name=_name(actor),
        action=ItemEvent.Action.STATUS,
        from_status=before,
        to_status=item.status,
        message=reason[:2000],
    )
    return True


def _lapse(item: ChecklistItem) -> str:
    """Why the sign-off or the not-applicable section that covered ``item`` stopped covering it."""
    last = latest_signoff(item)
    problem = signoff_problem(last, item) if last is not None else ""
    if problem == "expired":
        return "sign-off expired"
    if problem == "stale":
        return f"sign-off stale: {signoff_staleness(last, item)}"
    if item.section.not_applicable:
        why = section_covers(item)
        if why:
            return f"section not applicable no longer covers it: {why}"
    return ""


def _name(user: AbstractBaseUser | None) -> str:
    if user is None:
        return "readiness"
    return user.get_full_name() or user.get_username()


# --- Sections ------------------------------------------------------------------------------------


@dataclass
class SectionProgress:
    section: Section
    items: list[ChecklistItem]
    blocked_by: list[Section] = field(default_factory=list)

    @property
    def applicable(self) -> list[ChecklistItem]:
        return [i for i in self.items if i.status != ItemStatus.NOT_APPLICABLE]

    @property
    def done(self) -> int:
        return sum(1 for i in self.items if i.is_done)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def open_blockers(self) -> list[ChecklistItem]:
        return [i for i in self.items if i.is_blocker and not i.is_done]

    @property
    def failing(self) -> list[ChecklistItem]:
        return [i for i in self.items if i.status == ItemStatus.FAILING]

    @property
    def complete(self) -> bool:
        return not self.open_blockers

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked_by)


def live_items() -> QuerySet[ChecklistItem]:
    return ChecklistItem.objects.filter(retired=False).select_related(
        "section", "owner", "signed_off_by"
    )


def section_progress(checklist: str | None = None) -> list[SectionProgress]:
    """Progress of every live section in order; each knows the earlier sections blocking it."""
    from .catalogue import CHECKLISTS

    sections = Section.objects.filter(retired=False)
    if checklist:
        sections = sections.filter(checklist=checklist)
    rank = list(CHECKLISTS)
    sections = sorted(
        sections,
        key=lambda s: (rank.index(s.checklist) if s.checklist in rank else len(rank), s.order),
    )
    items: dict[int, list[ChecklistItem]] = {}
    for item in live_items().order_by("order"):
        items.setdefault(item.section_id, []).append(item)
    progress: list[SectionProgress] = []
    incomplete: dict[str, list[Section]] = {}
    for section in sections:
        row = SectionProgress(section, items.get(section.pk, []))
        row.blocked_by = list(incomplete.get(section.checklist, []))
        if not row.complete:
            incomplete.setdefault(section.checklist, []).append(section)
        progress.append(row)
    return progress


def blocking_sections(section: Section) -> list[SectionProgress]:
    """The earlier sections of the same checklist that still have open blockers."""
    rows = section_progress(section.checklist)
    for row in rows:
        if row.section.pk == section.pk:
            blocking = {s.pk for s in row.blocked_by}
            return [r for r in rows if r.section.pk in blocking]
    return []
