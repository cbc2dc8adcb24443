"""How an item's status follows from its probes, sign-offs and applicability; section progress.

An item is *not applicable* when it or its section is marked so (an automated blocker only through
its section, and only while none of its checks fails and the section's snapshot still holds, see
``section_covers``); *signed off* when it may be signed off (manual or hybrid) and has an active
sign-off (not revoked, not expired, not stale); otherwise an automated item is *passing* or
*failing* by the latest result of each of its probes, and anything else is *to do*.

The latest result of a probe is the newest one that ran (``latest_results``): a run without
network probes stores a skip for them, and that skip never hides an earlier real result. Results
count as they count *now*, not as they counted when stored: a silenced check (``waived``) that the
active sign-off of H05 covers counts as a warning, so revoking, expiring or staling that sign-off
makes it count against its item again without a new run. An advisory (W) probe only advises: on a
blocker item its failure counts as a warning, so a blocker item fails (and the CI gate fails) on
its E probes only.

A sign-off or a not-applicable section vouches for what it saw: a digest of each setting the item
depends on, and, for a hybrid sign-off, the failures present then. It goes stale when one of those
settings changes or a failure it did not see appears.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, F, IntegerField, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .catalogue import SILENCED_CHECKS_WAIVER
from .fingerprints import changed_settings, fingerprint, setting_digests
from .models import ChecklistItem, CheckResult, ItemEvent, ItemStatus, Section, SignOff
from .registry import (
    ADVISORY,
    BAD_OUTCOMES,
    ERROR,
    FAIL,
    PASS,
    SKIP,
    WAIVED,
    WARN,
    Probe,
    all_probes,
)

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


def counts_as(result: CheckResult, item: ChecklistItem | None) -> str:
    """The outcome ``result`` gives ``item``: an advisory probe's failure on a blocker item is a
    warning (the item is proven by its E probes; a W probe only advises)."""
    if (
        item is not None
        and item.is_blocker
        and result.severity == ADVISORY
        and result.status in BAD_OUTCOMES
    ):
        return WARN
    return result.status


def failure_keys(results: Iterable[CheckResult], item: ChecklistItem | None = None) -> list[str]:
    """Stable names of what is failing in ``results`` (for ``item``, see ``counts_as``).

    A Django deploy probe names the Django checks it failed on (``readiness.E034:security.W008``);
    any other probe is named with a digest of its message, numbers blanked so that a latency or a
    count does not make a new failure of the same finding.
    """
    keys: set[str] = set()
    for result in results:
        if counts_as(result, item) not in BAD_OUTCOMES:
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
        return failure_keys(latest_results(item), item)
    return []


def staleness(
    digests: dict[str, str],
    covered: Iterable[str],
    item: ChecklistItem,
    *,
    checks: bool,
    results: list[CheckResult] | None = None,
) -> str:
    """Why an attestation made with ``digests`` (and, with ``checks``, seeing the failures
    ``covered``) no longer holds for ``item``; "" while it does.

    ``results`` are the item's latest results (read from the database when not given).
    """
    changed = changed_settings(digests or {})
    if changed:
        return ", ".join(changed) + " changed"
    if checks:
        results = latest_results(item) if results is None else results
        new = sorted(set(failure_keys(results, item)) - set(covered))
        if new:
            return "new failing check " + ", ".join(new)
    return ""


def signoff_staleness(
    signoff: SignOff,
    item: ChecklistItem | None = None,
    results: list[CheckResult] | None = None,
) -> str:
    item = item or signoff.item
    return staleness(
        signoff.digests,
        signoff.covers,
        item,
        checks=item.kind == ChecklistItem.Kind.HYBRID,
        results=results,
    )


def signoff_problem(
    signoff: SignOff,
    item: ChecklistItem | None = None,
    results: list[CheckResult] | None = None,
) -> str:
    """Why a sign-off no longer counts ("revoked", "expired", "stale"), or "" when it does."""
    item = item or signoff.item
    if hasattr(signoff, "revocation"):
        return "revoked"
    if signoff.expires_at and signoff.expires_at <= timezone.now():
        return "expired"
    if signoff_staleness(signoff, item, results):
        return "stale"
    return ""


def section_snapshot(section: Section) -> dict[str, dict]:
    """What marking ``section`` not applicable vouches for, per automated blocker: its settings
    (and, for the record, the failures a sign-off of a hybrid item waived then)."""
    snapshot = {}
    for item in section.items.filter(retired=False).select_related("section"):
        if is_automated_blocker(item):
            snapshot[item.key] = {
                "failing": failure_keys(latest_results(item), item),
                "digests": current_digests(item),
            }
    return snapshot


def failing_checks(
    item: ChecklistItem, results: list[CheckResult] | None = None
) -> list[CheckResult]:
    """The results that make ``item`` failing, applicability aside: none for a manual item or a
    hybrid one whose active sign-off waives them."""
    if item.kind == ChecklistItem.Kind.MANUAL:
        return []
    results = latest_results(item) if results is None else results
    failing = [r for r in results if counts_as(r, item) in BAD_OUTCOMES]
    if failing and item.kind == ChecklistItem.Kind.HYBRID and active_signoff(item, results):
        return []
    return failing


def section_covers(item: ChecklistItem, results: list[CheckResult] | None = None) -> str:
    """Why ``item``'s not-applicable section no longer covers it ("" while it does).

    Any item but an automated blocker is covered. An automated blocker is covered only while none
    of its checks fails (a failing blocker is never hidden: fix it, or sign off a waiver of a
    hybrid item) and its settings are those of the snapshot taken when the section was marked.
    """
    if not is_automated_blocker(item):
        return ""
    snapshot = (item.section.na_snapshot or {}).get(item.key)
    if snapshot is None:
        return "it was not in the section when the section was marked not applicable"
    results = latest_results(item) if results is None else results
    failing = failure_keys(failing_checks(item, results), item)
    if failing:
        return "failing check " + ", ".join(failing)
    return staleness(snapshot.get("digests", {}), [], item, checks=False)


def latest_signoff(item: ChecklistItem) -> SignOff | None:
    return item.signoffs.select_related("revocation").order_by("-signed_at", "-pk").first()


def active_signoff(item: ChecklistItem, results: list[CheckResult] | None = None) -> SignOff | None:
    signoff = latest_signoff(item)
    if signoff is None or signoff_problem(signoff, item, results):
        return None
    return signoff


def waiver_signoff() -> SignOff | None:
    """The active sign-off of the waiver item (H05), if any."""
    item = (
        ChecklistItem.objects.select_related("section")
        .filter(key=SILENCED_CHECKS_WAIVER, retired=False)
        .first()
    )
    return active_signoff(item) if item is not None else None


def silenced_ids(result: CheckResult) -> set[str]:
    """The SILENCED_SYSTEM_CHECKS entries that made ``result`` a waiver."""
    waived = result.evidence.get("waived") if isinstance(result.evidence, dict) else None
    if waived:
        return {str(line).split(":", 1)[0] for line in waived}
    return {result.probe_id}


def with_waivers(results: list[CheckResult]) -> list[CheckResult]:
    """``results`` as they count now: a waiver covered by the active sign-off of H05 becomes a
    warning naming that sign-off (an unsaved copy; the stored row keeps what the probe found)."""
    if not any(r.status == WAIVED for r in results):
        return results
    signoff = waiver_signoff()
    if signoff is None:
        return results
    covered = set(signoff.covers)
    counted = []
    for result in results:
        if result.status == WAIVED and silenced_ids(result) <= covered:
            result = copy.copy(result)
            result.status = WARN
            result.message = (
                f"Waiver signed off in {SILENCED_CHECKS_WAIVER} by {signoff.signer_name} on "
                f"{signoff.signed_at:%Y-%m-%d} (sign-off #{signoff.pk}): {result.message}"
            )
            result.evidence = {**(result.evidence or {}), "waiver_signoff": signoff.pk}
        counted.append(result)
    return counted


def newest_results(results: QuerySet[CheckResult], probe_ids: Iterable[str]) -> QuerySet:
    """The newest row of each probe of ``probe_ids`` in ``results``, one query however long the
    history. A network probe's row from a run without network probes (a skip: it did not run) is
    taken only when that probe never ran for real."""
    probe_ids = set(probe_ids)
    offline = sorted(p.id for p in all_probes() if p.uses_network and p.id in probe_ids)
    not_run = (
        Case(
            When(run__network=False, probe_id__in=offline, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
        if offline
        else Value(0, output_field=IntegerField())
    )
    return (
        results.filter(probe_id__in=probe_ids)
        .annotate(
            not_run=not_run,
            newest=Window(
                RowNumber(),
                partition_by=[F("probe_id")],
                order_by=[F("not_run").asc(), F("run__started_at").desc(), F("pk").desc()],
            ),
        )
        .filter(newest=1)
        .order_by("probe_id")
    )


def latest_results(item: ChecklistItem) -> list[CheckResult]:
    """The result each current probe of the item counts with, as it counts now (module doc)."""
    probe_ids = [p.id for p in probes_for(item.key)]
    if not probe_ids:
        return []
    return with_waivers(list(newest_results(item.results.all(), probe_ids)))


def fold_outcome(
    results: Iterable[CheckResult], item: ChecklistItem | None = None
) -> tuple[str, str]:
    """The worst outcome ``results`` give ``item`` (see ``counts_as``), and the messages that
    made it so."""
    counted = [(counts_as(r, item), r) for r in results]
    for outcome in OUTCOME_ORDER:
        hits = [r for status, r in counted if status == outcome]
        if hits:
            return outcome, " ".join(f"[{r.probe_id.split('.')[1]}] {r.message}" for r in hits)
    return "", ""


def derive_status(item: ChecklistItem, signoff: SignOff | None, results: list[CheckResult]) -> str:
    if item.section.not_applicable and not section_covers(item, results):
        return ItemStatus.NOT_APPLICABLE
    if item.not_applicable and not is_automated_blocker(item):
        return ItemStatus.NOT_APPLICABLE
    if item.kind != ChecklistItem.Kind.AUTO and signoff is not None:
        return ItemStatus.SIGNED_OFF
    outcome, _ = fold_outcome(results, item)
    if item.kind != ChecklistItem.Kind.MANUAL and outcome not in ("", SKIP):
        return ItemStatus.FAILING if outcome in BAD_OUTCOMES else ItemStatus.PASSING
    return ItemStatus.TODO


@dataclass
class Evaluation:
    """What an item's results, sign-offs and applicability make of it."""

    outcome: str
    message: str
    status: str
    signoff: SignOff | None


def evaluate(item: ChecklistItem, results: list[CheckResult] | None = None) -> Evaluation:
    """The item's outcome and status from ``results`` (its latest stored results by default);
    nothing is written."""
    results = latest_results(item) if results is None else results
    outcome, message = fold_outcome(results, item)
    signoff = active_signoff(item, results)
    return Evaluation(outcome, message, derive_status(item, signoff, results), signoff)


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
    state = evaluate(item)
    item.last_outcome, item.last_message = state.outcome, state.message
    item.status = state.status
    item.signed_off_by = state.signoff.signed_by if state.signoff else None
    item.signed_off_at = state.signoff.signed_at if state.signoff else None
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


def refresh_waived_items(*, actor: AbstractBaseUser | None = None, reason: str = "") -> int:
    """Refresh every item with a silenced check among its results: they count with the waiver
    item's sign-off, which just changed. Returns how many changed status."""
    items = (
        ChecklistItem.objects.select_related("section")
        .filter(retired=False, results__status=WAIVED)
        .distinct()
    )
    return sum(refresh_item(item, actor=actor, reason=reason) for item in items)


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
