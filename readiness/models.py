"""Checklist state: sections, items, check runs and their results, sign-offs and history.

Definitions (titles, guidance, which probe proves what) come from ``catalogue.py`` and the probe
registry; these tables hold what the team did with them. Results, history events, sign-offs and
revocations are append-only: a row, once written, is never changed or deleted.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(RuntimeError):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only; they cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only; they cannot be deleted")


class AppendOnlyModel(models.Model):
    """A row that is written once: saving an existing row or deleting one raises."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(
                f"{type(self).__name__} #{self.pk} is append-only; write a new row instead"
            )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(
            f"{type(self).__name__} #{self.pk} is append-only; it cannot be deleted"
        )


class Checklist(models.TextChoices):
    PRODUCTION = "production", "Production readiness"
    MIGRATION = "migration", "Migration phases"


class Section(models.Model):
    key = models.SlugField(max_length=40, unique=True)
    checklist = models.CharField(max_length=20, choices=Checklist.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    order = models.PositiveIntegerField(
        help_text="Position within its checklist; an earlier unfinished section blocks later ones."
    )
    not_applicable = models.BooleanField(default=False)
    na_reason = models.TextField("reason not applicable", blank=True)
    na_snapshot = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per automated blocker, what was failing and a digest of each of its settings "
        "when the section was marked not applicable; a new failure or a changed setting makes "
        "the item count again.",
    )
    retired = models.BooleanField(
        default=False, help_text="No longer in the catalogue; kept for its history."
    )

    class Meta:
        ordering = ["checklist", "order"]

    def __str__(self) -> str:
        return self.title


class ItemStatus(models.TextChoices):
    TODO = "todo", "To do"
    PASSING = "passing", "Passing"
    FAILING = "failing", "Failing"
    NOT_APPLICABLE = "na", "Not applicable"
    SIGNED_OFF = "signed_off", "Signed off"


#: Statuses with which an item counts as done for its section's progress.
DONE_STATUSES = frozenset({ItemStatus.PASSING, ItemStatus.NOT_APPLICABLE, ItemStatus.SIGNED_OFF})


class ChecklistItem(models.Model):
    class Kind(models.TextChoices):
        AUTO = "auto", "Automated"
        MANUAL = "manual", "Sign-off"
        HYBRID = "hybrid", "Automated or waiver"

    class Severity(models.TextChoices):
        BLOCKER = "blocker", "Blocker"
        ADVISORY = "advisory", "Advisory"

    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="items")
    key = models.CharField(max_length=20, unique=True)
    order = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    guidance = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    asvs = models.CharField("ASVS", max_length=20, blank=True)
    signer_role = models.CharField(max_length=100, blank=True)
    evidence_hint = models.CharField(max_length=300, blank=True)
    reattest = models.CharField("re-attest", max_length=200, blank=True)
    watches = models.JSONField(default=list, blank=True)
    retired = models.BooleanField(default=False)

    status = models.CharField(max_length=12, choices=ItemStatus.choices, default=ItemStatus.TODO)
    last_outcome = models.CharField(max_length=10, blank=True)
    last_message = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evidence_text = models.TextField("evidence", blank=True)
    evidence_url = models.URLField("evidence link", max_length=500, blank=True)
    not_applicable = models.BooleanField(default=False)
    na_reason = models.TextField("reason not applicable", blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["section__checklist", "section__order", "order"]
        permissions = [
            ("sign_off_item", "Can sign off and revoke checklist items"),
            ("run_checks", "Can run readiness checks"),
            ("mark_not_applicable", "Can mark sections and items not applicable"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    @property
    def is_blocker(self) -> bool:
        return self.severity == self.Severity.BLOCKER

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES


class CheckRun(models.Model):
    """One run of probes (all of them or a selection), from the admin, a command or the schedule."""

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "Code"

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    network = models.BooleanField(default=True, help_text="Whether network probes were allowed.")
    counts = models.JSONField(default=dict, blank=True)
    failing_blockers = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"Run #{self.pk} ({self.get_trigger_display()}, {self.started_at:%Y-%m-%d %H:%M})"


class CheckResult(AppendOnlyModel):
    run = models.ForeignKey(CheckRun, on_delete=models.PROTECT, related_name="results")
    item = models.ForeignKey(
        ChecklistItem, null=True, blank=True, on_delete=models.PROTECT, related_name="results"
    )
    probe_id = models.CharField(max_length=20, db_index=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=1)
    severity = models.CharField(max_length=10)
    status = models.CharField(max_length=10)
    message = models.TextField()
    observed = models.TextField(blank=True)
    expected = models.TextField(blank=True)
    hint = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    duration_ms = models.FloatField(default=0)
    fingerprint = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-run__started_at", "probe_id"]

    def __str__(self) -> str:
        return f"{self.probe_id}: {self.status}"


class ItemEvent(AppendOnlyModel):
    """One entry of an item's history."""

    class Action(models.TextChoices):
        CREATED = "created", "Added to the checklist"
        CATALOGUE = "catalogue", "Catalogue changed"
        STATUS = "status", "Status changed"
        SIGNED_OFF = "signed_off", "Signed off"
        REVOKED = "revoked", "Sign-off revoked"
        NOT_APPLICABLE = "na", "Marked not applicable"
        APPLICABLE = "applicable", "Marked applicable again"
        OWNER = "owner", "Owner changed"
        EVIDENCE = "evidence", "Evidence changed"
        RETIRED = "retired", "Removed from the catalogue"

    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=12, choices=Action.choices)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.item.key}: {self.get_action_display()}"


class SignOff(AppendOnlyModel):
    """A person's attestation of an item. Never edited: a revocation is its own record."""

    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="signoffs")
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    signer_name = models.CharField(max_length=150)
    signer_role = models.CharField(max_length=100, blank=True)
    signed_at = models.DateTimeField(default=timezone.now, editable=False)
    environment = models.CharField(max_length=100, blank=True)
    release = models.CharField("release or commit", max_length=100, blank=True)
    evidence_url = models.URLField("evidence link", max_length=500, blank=True)
    evidence_text = models.TextField(
        "evidence", blank=True, help_text="The item's evidence text when it was signed."
    )
    notes = models.TextField(blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When this must be attested again."
    )
    fingerprint = models.CharField(
        max_length=16, blank=True, help_text="Hash of the item's settings when it was signed."
    )
    digests = models.JSONField(
        default=dict,
        blank=True,
        help_text="A digest of each setting the item depended on when it was signed; the "
        "sign-off goes stale when one of them changes.",
    )
    covers = models.JSONField(
        default=list,
        blank=True,
        help_text="What the sign-off vouches for: the failing checks of a hybrid item when it "
        "was signed (a new failure makes it stale), the silenced checks for the waiver item.",
    )

    class Meta:
        ordering = ["-signed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.item.key} signed off by {self.signer_name} on {self.signed_at:%Y-%m-%d}"


class SignOffRevocation(AppendOnlyModel):
    signoff = models.OneToOneField(SignOff, on_delete=models.PROTECT, related_name="revocation")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_by_name = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(default=timezone.now, editable=False)
    reason = models.TextField()

    def __str__(self) -> str:
        return f"Revocation of {self.signoff}"
