"""The import ledger in the admin: where every run stands, what failed and why.

Runs show a progress bar, counts, rate and ETA; records filter by status, kind, outcome and
error. The ledger is read-only here (pages show no Save or Delete): runs and records change
only through the actions, which need the model's change permission, and every action that
changes something writes a ``LogEntry`` on the run it touched.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import runner
from .batches import ledger_lock
from .exports import write_failures
from .models import ImportRecord, ImportRun, VerificationDifference

Status = ImportRecord.Status
logger = logging.getLogger(__name__)
SOURCE_SHOWN = 80


def _bar(run: ImportRun) -> str:
    total = run.to_send + run.count("invalid")
    if not total:
        return format_html('<span style="color:#888">{}</span>', "no records")
    parts = [
        ("succeeded", "#3a9d5d"),
        ("failed", "#c0392b"),
        ("in_flight", "#e0a030"),
        ("invalid", "#999"),
        ("rolled_back", "#6b6bb3"),
    ]
    segments = format_html_join(
        "",
        '<span title="{} {}" style="display:inline-block;height:10px;width:{}%;background:{}"></span>',
        (
            (run.count(status), status, round(100 * run.count(status) / total, 2), color)
            for status, color in parts
            if run.count(status)
        ),
    )
    in_flight = run.count("in_flight")
    return format_html(
        '<div style="width:160px;background:#eee;border-radius:3px;overflow:hidden;white-space:nowrap">'
        "{}</div><small>{}% done{}</small>",
        segments,
        round(100 * run.progress, 1),
        f" · {in_flight} in flight" if in_flight else "",
    )


def short_source(source: str) -> str:
    """``users=/data/exports/users.csv, ...`` as ``users=users.csv, ...``, at most
    ``SOURCE_SHOWN`` characters (the run page shows it whole)."""
    parts = []
    for part in source.split(", "):
        name, sep, path = part.partition("=")
        parts.append(f"{name}={path.rsplit('/', 1)[-1]}" if sep else part)
    short = ", ".join(parts)
    return short if len(short) <= SOURCE_SHOWN else short[: SOURCE_SHOWN - 1] + "…"


class ReadOnlyLedgerAdmin(admin.ModelAdmin):
    """Pages that only show (no Save, no Delete) and actions gated by the change permission.

    ``has_change_permission`` is False for everyone, so Django renders the view-only page;
    actions that change the ledger declare ``permissions=["operate"]``, which checks the
    model's change permission itself.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are created by migration_import, records by its ingest

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger is the record of what was sent; see migration_rollback

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


def refused(model_admin: admin.ModelAdmin, request: HttpRequest, run: ImportRun) -> bool:
    """Refuse, with the reason, a run that must not be sent again now (see
    ``runner.ensure_can_continue``); True when refused."""
    try:
        runner.ensure_can_continue(run)
    except runner.NotResumable as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return True
    return False


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyLedgerAdmin):
    list_display = [
        "id",
        "source_short",
        "status",
        "phase",
        "progress_bar",
        "succeeded",
        "failed",
        "invalid",
        "rate",
        "eta_display",
        "started_at",
        "finished_at",
        "differences_display",
    ]
    list_filter = ["status", "dry_run"]
    search_fields = ["source", "checksum", "message"]
    readonly_fields = [
        "source",
        "source_detail",
        "checksum",
        "options",
        "dry_run",
        "status",
        "phase",
        "message",
        "counts_table",
        "progress_bar",
        "rate",
        "eta_display",
        "created_by",
        "created_at",
        "started_at",
        "resumed_at",
        "finished_at",
        "verification",
        "links",
    ]
    exclude = [
        "counts",
        "throughput",
        "done_at_resume",
        "verified_at",
        "differences",
        "verifying_since",
        "verify_seen_at",
        "verify_checked",
    ]
    actions = ["retry_failed", "resume_runs", "cancel_runs", "verify_runs", "download_failures"]

    @admin.display(description="source", ordering="source")
    def source_short(self, run: ImportRun) -> str:
        return format_html('<span title="{}">{}</span>', run.source, short_source(run.source))

    @admin.display(description="progress")
    def progress_bar(self, run: ImportRun) -> str:
        return _bar(run)

    @admin.display(description="succeeded")
    def succeeded(self, run: ImportRun) -> int:
        return run.count("succeeded")

    @admin.display(description="failed")
    def failed(self, run: ImportRun) -> int:
        return run.count("failed")

    @admin.display(description="invalid")
    def invalid(self, run: ImportRun) -> int:
        return run.count("invalid")

    @admin.display(description="rate")
    def rate(self, run: ImportRun) -> str:
        if run.estimating:
            return "estimating…"
        return f"{run.throughput:.1f}/s" if run.throughput else "-"

    @admin.display(description="ETA")
    def eta_display(self, run: ImportRun) -> str:
        if run.estimating:
            return "estimating…"
        eta = run.eta
        return str(eta) if eta is not None else "-"

    @admin.display(description="differences")
    def differences_display(self, run: ImportRun) -> str:
        if run.verify_running:
            return f"verifying… ({run.verify_checked} checked)"
        return "-" if run.differences is None else str(run.differences)

    @admin.display(description="verification")
    def verification(self, run: ImportRun) -> str:
        last = (
            f"last verified {timezone.localtime(run.verified_at):%Y-%m-%d %H:%M}: "
            f"{run.differences} difference(s)"
            if run.verified_at
            else "never verified"
        )
        if run.verify_running:
            return (
                f"running since {timezone.localtime(run.verifying_since):%Y-%m-%d %H:%M:%S}, "
                f"{run.verify_checked} record(s) checked so far ({last})"
            )
        if run.verifying_since:
            return (
                f"the verify started {timezone.localtime(run.verifying_since):%Y-%m-%d %H:%M} "
                f"stopped without finishing (its process went away); {last}"
            )
        return last

    @admin.display(description="counts")
    def counts_table(self, run: ImportRun) -> str:
        summary = runner.summary(run, save=False)["kinds"]  # a page view writes nothing
        columns = [
            "rows",
            "succeeded",
            "created",
            "existing",
            "updated",
            "failed",
            "invalid",
            "pending",
            "rolled_back",
        ]
        return format_html(
            "<table><thead>"
            '<tr><th rowspan="2">kind</th><th rowspan="2">rows</th>'
            '<th colspan="4" style="text-align:center">succeeded</th>'
            '<th rowspan="2">failed</th><th rowspan="2">invalid</th>'
            '<th rowspan="2">pending</th><th rowspan="2">rolled back</th></tr>'
            "<tr><th>all</th><th>created</th><th>already there</th><th>corrected</th></tr>"
            "</thead><tbody>{}</tbody></table>"
            "<small>created, already there and corrected split the succeeded records; a failed "
            "user may still have been created (outcome on its record, step in its last "
            "error).</small>",
            format_html_join(
                "",
                "<tr>{}</tr>",
                (
                    (
                        format_html_join(
                            "",
                            "<td>{}</td>",
                            ((v,) for v in [kind, *(row[c] for c in columns)]),
                        ),
                    )
                    for kind, row in summary.items()
                ),
            ),
        )

    @admin.display(description="records")
    def links(self, run: ImportRun) -> str:
        records = reverse("admin:migration_importrecord_changelist")
        differences = reverse("admin:migration_verificationdifference_changelist")
        return format_html(
            '<a href="{}?run__id__exact={}">all records</a> · '
            '<a href="{}?run__id__exact={}&status__exact=failed">failed</a> · '
            '<a href="{}?run__id__exact={}&status__exact=invalid">invalid</a> · '
            '<a href="{}?run__id__exact={}">verification differences</a>',
            records,
            run.pk,
            records,
            run.pk,
            records,
            run.pk,
            differences,
            run.pk,
        )

    # actions ------------------------------------------------------------------------------
    @admin.action(description="Retry failed records", permissions=["operate"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        """Send again every failed record of the selected runs (and what else they have
        pending, said in the message)."""
        for run in queryset:
            if refused(self, request, run):
                continue
            with ledger_lock():
                failed = run.records.filter(status=Status.FAILED).count()
                pending = run.records.filter(status__in=[Status.PENDING, Status.IN_FLIGHT]).count()
            if not failed:
                self.message_user(
                    request,
                    f"Run {run.pk} has no failed record: nothing to retry.",
                    messages.WARNING,
                )
                continue
            changed = runner.prepare_resume(run, retry_failed=True)
            how = runner.launch(run)
            also = f" (and the run's {pending} pending record(s))" if pending else ""
            retried = f"{changed['requeued_failed']} failed record(s){also}, {how}"
            self.log_change(request, run, f"Retried {retried}.")
            self.message_user(request, f"Run {run.pk}: retried {retried}.")

    @admin.action(description="Resume cancelled or stopped runs", permissions=["operate"])
    def resume_runs(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        """What ``migration_resume RUN`` does: send the pending records of a cancelled,
        stopped or never started run, and its failed-transient ones."""
        resumable = (ImportRun.Status.CANCELLED, ImportRun.Status.FAILED, ImportRun.Status.PENDING)
        for run in queryset:
            if refused(self, request, run):
                continue
            if run.status not in resumable:
                self.message_user(
                    request,
                    f"Run {run.pk} is {run.get_status_display()}: nothing to resume "
                    "(its failed records are sent again with 'Retry failed records').",
                    messages.WARNING,
                )
                continue
            with ledger_lock():
                pending = run.records.filter(status__in=[Status.PENDING, Status.IN_FLIGHT]).count()
                transient = run.records.filter(status=Status.FAILED, retryable=True).count()
            if not pending and not transient:
                self.message_user(
                    request,
                    f"Run {run.pk} has no pending record and no transient failure: nothing to "
                    "resume.",
                    messages.WARNING,
                )
                continue
            changed = runner.prepare_resume(run)
            how = runner.launch(run)
            sent = (
                f"{pending} pending and {changed['requeued_failed']} failed-transient "
                f"record(s), {how}"
            )
            self.log_change(request, run, f"Resumed {sent}.")
            self.message_user(request, f"Run {run.pk}: resumed {sent}.")

    @admin.action(description="Cancel runs", permissions=["operate"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        for run in queryset:
            if runner.cancel(run):
                self.log_change(request, run, "Cancelled the run.")
                self.message_user(
                    request,
                    f"Run {run.pk} cancelled: its workers finish the record in hand and put the "
                    "rest back. Continue it with 'Resume cancelled or stopped runs' once no "
                    f"record is in flight (or manage.py migration_resume {run.pk}); to undo what "
                    f"it did in Scalekit, run manage.py migration_rollback {run.pk} (it deletes "
                    "what the run created, after asking).",
                )
            else:
                self.message_user(
                    request, f"Run {run.pk} is {run.status}: nothing to cancel.", messages.WARNING
                )

    @admin.action(description="Verify against Scalekit", permissions=["operate"])
    def verify_runs(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        for run in queryset:
            try:
                how = runner.launch_verify(run)
            except runner.AlreadyVerifying as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.log_change(request, run, f"Verification {how}.")
            self.message_user(
                request,
                f"Run {run.pk}: verification {how}; the differences column shows its progress "
                "and the result.",
            )

    @admin.action(description="Download failures as CSV", permissions=["view"])
    def download_failures(
        self, request: HttpRequest, queryset: QuerySet[ImportRun]
    ) -> HttpResponse:
        """A read: logged to the ``migration.admin`` logger, not as a change of the runs."""
        runs = list(queryset.order_by("pk"))
        buffer = io.StringIO()
        count = write_failures(buffer, runs)
        names = "-".join(str(run.pk) for run in runs)[:60]
        logger.info(
            "%s downloaded the failures of run(s) %s (%d row(s))",
            request.user.get_username(),
            ", ".join(str(run.pk) for run in runs),
            count,
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="migration-failures-{names}-{stamp}.csv"'
        )
        return response


class ErrorCodeFilter(admin.SimpleListFilter):
    """The error codes of the records, of the run selected in the run filter if one is."""

    title = "error"
    parameter_name = "error_code"
    run_parameter = "run__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        records = ImportRecord.objects.exclude(error_code="")
        run_id = request.GET.get(self.run_parameter, "")
        if run_id.isdigit():
            records = records.filter(run_id=int(run_id))
        codes = records.values_list("error_code", flat=True).distinct().order_by("error_code")
        return [(code, code) for code in codes[:100]]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ImportRecord]
    ) -> QuerySet[ImportRecord]:
        if self.value():
            return queryset.filter(error_code=self.value())
        return queryset


@admin.register(ImportRecord)
class ImportRecordAdmin(ReadOnlyLedgerAdmin):
    list_display = [
        "id",
        "run",
        "kind",
        "row_number",
        "key",
        "status",
        "outcome",
        "scalekit_id",
        "attempts",
        "error_code",
        "short_error",
    ]
    list_filter = ["status", "kind", "outcome", ErrorCodeFilter, "retryable", "run"]
    search_fields = ["key", "email", "external_id", "scalekit_id", "last_error", "location"]
    list_select_related = ["run"]
    show_full_result_count = False
    actions = ["retry_records"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in ImportRecord._meta.fields]

    @admin.display(description="last error")
    def short_error(self, record: ImportRecord) -> str:
        return record.last_error[:120] + ("…" if len(record.last_error) > 120 else "")

    @admin.action(description="Retry the selected failed records", permissions=["operate"])
    def retry_records(self, request: HttpRequest, queryset: QuerySet[ImportRecord]) -> None:
        """Send again the selected failed records, and only those (other failures stay)."""
        by_run: dict[int, list[int]] = {}
        for pk, run_id in queryset.filter(status=Status.FAILED).values_list("pk", "run_id"):
            by_run.setdefault(run_id, []).append(pk)
        if not by_run:
            self.message_user(request, "No failed record selected.", messages.WARNING)
        for run in ImportRun.objects.filter(pk__in=list(by_run)):
            if refused(self, request, run):
                continue
            retried = runner.retry_records(run, by_run[run.pk])
            pending = run.count("pending") - retried
            how = runner.launch(run)
            also = f" (and the run's {pending} other pending record(s))" if pending > 0 else ""
            self.log_change(
                request, run, f"Retried {retried} selected failed record(s){also}, {how}."
            )
            self.message_user(request, f"Run {run.pk}: {retried} record(s) retried{also}, {how}.")


@admin.register(VerificationDifference)
class VerificationDifferenceAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "kind", "key", "field", "expected", "actual", "created_at"]
    list_filter = ["kind", "field", "run"]
    search_fields = ["key", "field", "expected", "actual"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
