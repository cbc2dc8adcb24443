"""The import ledger: the database, not memory, knows what is done.

An ``ImportRun`` is one import of one source. Every role, organization and user of the source is
an ``ImportRecord`` with its normalised payload and where it stands in Scalekit. Workers claim
records (``status=in_flight`` with a lease), send them, and write the outcome back in bulk, so a
crash at any point leaves a ledger that says exactly what remains to do.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from .conf import app_settings

#: Rate and ETA stay "estimating" until the current execution has written back this many
#: records, run this long, and written back at least as many records as it holds in flight:
#: records are written back a batch at a time, so early on the records written back say little
#: of what is being sent (8 batches of 100 in flight and 22 written back read 0.2/s at 8/s).
ESTIMATE_MIN_RECORDS = 10
ESTIMATE_MIN_SECONDS = 5.0


class ImportRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        COMPLETED = "completed", "completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "completed with errors"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"
        ROLLED_BACK = "rolled_back", "rolled back"

    class Phase(models.TextChoices):
        INGEST = "ingest", "reading and validating the source"
        ROLES = "roles", "roles"
        ORGANIZATIONS = "organizations", "organizations"
        USERS = "users", "users"
        DONE = "done", "done"

    FINISHED = (Status.COMPLETED, Status.COMPLETED_WITH_ERRORS, Status.FAILED, Status.ROLLED_BACK)

    source = models.CharField(max_length=500, help_text="What was imported, e.g. the file names.")
    source_detail = models.JSONField(
        default=list, blank=True, help_text="Per file: kind, path, format, checksum, rows."
    )
    checksum = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="SHA-256 of the source."
    )
    options = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.INGEST)
    message = models.TextField(blank=True, help_text="Why the run stopped, when it did.")
    counts = models.JSONField(default=dict, blank=True, help_text="Records per kind and status.")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current (or last) execution started."
    )
    done_at_resume = models.PositiveIntegerField(
        default=0, help_text="Records already finished when the current execution started."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    throughput = models.FloatField(
        null=True, blank=True, help_text="Records sent per second by the current execution."
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verifying_since = models.DateTimeField(
        null=True, blank=True, help_text="When the verify under way (started from the admin) began."
    )
    verify_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the verify under way."
    )
    verify_checked = models.PositiveIntegerField(
        default=0, help_text="Records the verify under way has checked so far."
    )
    differences = models.PositiveIntegerField(
        null=True, blank=True, help_text="Found by the last verify."
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"run {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def option(self, name: str, default: object = None) -> object:
        return self.options.get(name, default)

    def refresh_counts(self, *, save: bool = True) -> dict:
        """Recount the records by kind, status and outcome (one aggregate query)."""
        counts: dict = {"total": {}}
        # Outcomes are counted over succeeded records only: a failed user may have been
        # created before a later step failed, and counting it as "created" too made the
        # columns add up to more than the rows.
        rows = self.records.values("kind", "status", "outcome").annotate(n=Count("id")).order_by()
        for row in rows:
            per_kind = counts.setdefault(row["kind"], {})
            per_kind[row["status"]] = per_kind.get(row["status"], 0) + row["n"]
            counts["total"][row["status"]] = counts["total"].get(row["status"], 0) + row["n"]
            if row["outcome"] and row["status"] == ImportRecord.Status.SUCCEEDED:
                key = f"outcome_{row['outcome']}"
                per_kind[key] = per_kind.get(key, 0) + row["n"]
                counts["total"][key] = counts["total"].get(key, 0) + row["n"]
        self.counts = counts
        elapsed = self.execution_seconds
        if elapsed is not None:
            # This execution only: after a resume, neither the idle time since the first start
            # nor the records finished before count.
            done = self.done_this_execution
            self.throughput = round(done / elapsed, 2) if elapsed > 0 and done > 0 else None
        if save:
            ImportRun.objects.filter(pk=self.pk).update(
                counts=self.counts, throughput=self.throughput
            )
        return counts

    def count(self, status: str, kind: str = "total") -> int:
        return int(self.counts.get(kind, {}).get(status, 0))

    @property
    def to_send(self) -> int:
        """Records that go to Scalekit (everything but invalid rows)."""
        total = self.counts.get("total", {})
        return sum(
            n for key, n in total.items() if not key.startswith("outcome_") and key != "invalid"
        )

    @property
    def done(self) -> int:
        return self.count("succeeded") + self.count("failed") + self.count("rolled_back")

    @property
    def progress(self) -> float:
        """Share of the records to send that are finished, 0.0-1.0."""
        return self.done / self.to_send if self.to_send else (1.0 if self.is_finished else 0.0)

    @property
    def execution_seconds(self) -> float | None:
        """How long the current (or last) execution has run (until it finished, if it did)."""
        since = self.resumed_at or self.started_at
        if since is None:
            return None
        return ((self.finished_at or timezone.now()) - since).total_seconds()

    @property
    def done_this_execution(self) -> int:
        """Records the current execution has written back (succeeded or failed)."""
        return max(self.count("succeeded") + self.count("failed") - self.done_at_resume, 0)

    @property
    def estimating(self) -> bool:
        """Whether a running run's rate is still too uncertain to show or to compute an ETA
        from (see ``ESTIMATE_MIN_RECORDS``)."""
        if self.status != self.Status.RUNNING:
            return False
        done = self.done_this_execution
        return (
            done < ESTIMATE_MIN_RECORDS
            or done < self.count("in_flight")
            or (self.execution_seconds or 0.0) < ESTIMATE_MIN_SECONDS
        )

    @property
    def eta(self) -> timedelta | None:
        """Time left at the current rate; None unless running with a rate worth trusting."""
        if self.status != self.Status.RUNNING or self.estimating or not self.throughput:
            return None
        remaining = max(self.to_send - self.done, 0)
        return timedelta(seconds=round(remaining / self.throughput))

    @property
    def verify_running(self) -> bool:
        """A verify started from the admin is under way: it has shown a sign of life within
        ``LEASE_SECONDS`` (a verify whose process died stops counting after that)."""
        if self.verifying_since is None:
            return False
        seen = self.verify_seen_at or self.verifying_since
        return timezone.now() - seen < timedelta(seconds=float(app_settings.LEASE_SECONDS))


class ImportRecord(models.Model):
    class Kind(models.TextChoices):
        ROLE = "role", "role"
        ORGANIZATION = "organization", "organization"
        USER = "user", "user"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        IN_FLIGHT = "in_flight", "in flight"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        INVALID = "invalid", "invalid (not sent)"
        ROLLED_BACK = "rolled_back", "rolled back"

    class Outcome(models.TextChoices):
        NONE = "", "-"
        CREATED = "created", "created by this run"
        EXISTING = "existing", "already in Scalekit"
        UPDATED = "updated", "already in Scalekit, corrected"

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="records")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    row_number = models.PositiveIntegerField(
        null=True, blank=True, help_text="Line (CSV, NDJSON) or element (JSON)."
    )
    location = models.CharField(
        max_length=300, blank=True, help_text="File and row, or database row."
    )
    key = models.CharField(
        max_length=520,
        blank=True,
        help_text="Identity in the source: role name, external id or email.",
    )
    email = models.CharField(max_length=254, blank=True, help_text="Normalised, lower case.")
    external_id = models.CharField(max_length=512, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.NONE, blank=True
    )
    scalekit_id = models.CharField(max_length=64, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(
        max_length=40, blank=True, help_text="Short category of the last error."
    )
    last_error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False, help_text="The last error was transient.")
    recheck = models.BooleanField(
        default=False,
        help_text="An earlier send may have reached Scalekit: look it up before sending again.",
    )
    result = models.JSONField(
        default=dict, blank=True, help_text="What the run changed, e.g. memberships added."
    )
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    first_claimed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["run", "kind", "status"], name="migration_rec_run_kind_status"),
            models.Index(
                fields=["run", "status", "error_code"], name="migration_rec_run_status_err"
            ),
            models.Index(fields=["run", "kind", "email"], name="migration_rec_run_kind_email"),
            models.Index(
                fields=["run", "kind", "external_id"], name="migration_rec_run_kind_extid"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "kind", "key"],
                condition=~Q(status="invalid"),
                name="migration_record_unique_key_per_run",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key or self.location}"


class VerificationDifference(models.Model):
    """One mismatch between the ledger and Scalekit, found by ``migration_verify``."""

    run = models.ForeignKey(
        ImportRun, on_delete=models.CASCADE, related_name="verification_differences"
    )
    record = models.ForeignKey(
        ImportRecord, on_delete=models.CASCADE, null=True, blank=True, related_name="differences"
    )
    kind = models.CharField(max_length=16, choices=ImportRecord.Kind.choices)
    key = models.CharField(max_length=520, blank=True)
    field = models.CharField(max_length=100)
    expected = models.TextField(blank=True)
    actual = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.field}"
