"""The import ledger in the admin: where every run stands, what failed and why.

Runs show a progress bar, counts, rate and ETA; records filter by status, kind, outcome and
error. Every action that changes something writes a ``LogEntry`` on the run it touched.
"""

from __future__ import annotations

import io
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import runner
from .exports import write_failures
from .models import ImportRecord, ImportRun, VerificationDifference

Status = ImportRecord.Status


def _bar(run: ImportRun) -> str:
    total = run.to_send + run.count("invalid")
    if not total:
        return format_html('<span style="color:#888">no records</span>')
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
    return format_html(
        '<div style="width:160px;background:#eee;border-radius:3px;overflow:hidden;white-space:nowrap">'
        "{}</div><small>{}%</small>",
        segments,
        round(100 * run.progress, 1),
    )


def refused_unread(model_admin: admin.ModelAdmin, request: HttpRequest, run: ImportRun) -> bool:
    """Refuse, with the reason, a run whose source was not fully read; True when refused."""
    try:
        runner.ensure_ingested(run)
    except runner.NotResumable as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return True
    return False


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "source",
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
        "differences",
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
        "verified_at",
        "differences",
        "links",
    ]
    exclude = ["counts", "throughput"]
    actions = ["retry_failed", "cancel_runs", "verify_runs", "download_failures"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are created by migration_import

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
        return f"{run.throughput:.1f}/s" if run.throughput else "-"

    @admin.display(description="ETA")
    def eta_display(self, run: ImportRun) -> str:
        eta = run.eta
        return str(eta) if eta is not None else "-"

    @admin.display(description="counts")
    def counts_table(self, run: ImportRun) -> str:
        summary = runner.summary(run, save=False)["kinds"]  # a page view writes nothing
        columns = [
            "rows",
            "created",
            "existing",
            "updated",
            "failed",
            "invalid",
            "pending",
            "rolled_back",
        ]
        header = format_html_join("", "<th>{}</th>", ((c,) for c in ["kind", *columns]))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (
                    format_html_join(
                        "", "<td>{}</td>", ((v,) for v in [kind, *(row[c] for c in columns)])
                    ),
                )
                for kind, row in summary.items()
            ),
        )
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, body
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
    @admin.action(description="Retry failed records", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        for run in queryset:
            if run.dry_run or run.status == ImportRun.Status.ROLLED_BACK:
                self.message_user(
                    request,
                    f"Run {run.pk} is a dry run or rolled back: not retried.",
                    messages.WARNING,
                )
                continue
            if run.status == ImportRun.Status.RUNNING:
                self.message_user(
                    request, f"Run {run.pk} is running: cancel it first.", messages.WARNING
                )
                continue
            if refused_unread(self, request, run):
                continue
            changed = runner.prepare_resume(run, retry_failed=True)
            how = runner.launch(run)
            self.log_change(
                request, run, f"Retried {changed['requeued_failed']} failed record(s), {how}."
            )
            self.message_user(
                request,
                f"Run {run.pk}: {changed['requeued_failed']} failed record(s) retried, {how}.",
            )

    @admin.action(description="Cancel runs", permissions=["change"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        for run in queryset:
            if runner.cancel(run):
                self.log_change(request, run, "Cancelled the run.")
                self.message_user(
                    request, f"Run {run.pk} cancelled; migration_resume continues it."
                )
            else:
                self.message_user(
                    request, f"Run {run.pk} is {run.status}: nothing to cancel.", messages.WARNING
                )

    @admin.action(description="Verify against Scalekit", permissions=["change"])
    def verify_runs(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        for run in queryset:
            how = runner.launch_verify(run)
            self.log_change(request, run, f"Verification {how}.")
            self.message_user(
                request,
                f"Run {run.pk}: verification {how}; the differences column updates when done.",
            )

    @admin.action(description="Download failures as CSV", permissions=["view"])
    def download_failures(
        self, request: HttpRequest, queryset: QuerySet[ImportRun]
    ) -> HttpResponse:
        runs = list(queryset.order_by("pk"))
        buffer = io.StringIO()
        count = write_failures(buffer, runs)
        for run in runs:
            self.log_change(request, run, f"Downloaded the failures ({count} row(s) in the file).")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        names = "-".join(str(run.pk) for run in runs)[:60]
        response["Content-Disposition"] = (
            f'attachment; filename="migration-failures-{names}-{stamp}.csv"'
        )
        return response


class ErrorCodeFilter(admin.SimpleListFilter):
    title = "error"
    parameter_name = "error_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = (
            ImportRecord.objects.exclude(error_code="")
            .values_list("error_code", flat=True)
            .distinct()
            .order_by("error_code")
        )
        return [(code, code) for code in codes[:100]]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ImportRecord]
    ) -> QuerySet[ImportRecord]:
        if self.value():
            return queryset.filter(error_code=self.value())
        return queryset


@admin.register(ImportRecord)
class ImportRecordAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger is the record of what was sent

    @admin.display(description="last error")
    def short_error(self, record: ImportRecord) -> str:
        return record.last_error[:120] + ("…" if len(record.last_error) > 120 else "")

    @admin.action(description="Retry the selected failed records", permissions=["change"])
    def retry_records(self, request: HttpRequest, queryset: QuerySet[ImportRecord]) -> None:
        """Send again the selected failed records, and only those (other failures stay)."""
        by_run: dict[int, list[int]] = {}
        for pk, run_id in queryset.filter(status=Status.FAILED).values_list("pk", "run_id"):
            by_run.setdefault(run_id, []).append(pk)
        if not by_run:
            self.message_user(request, "No failed record selected.", messages.WARNING)
        for run in ImportRun.objects.filter(pk__in=list(by_run)):
            if (
                run.status in (ImportRun.Status.RUNNING, ImportRun.Status.ROLLED_BACK)
                or run.dry_run
            ):
                self.message_user(
                    request,
                    f"Run {run.pk} is running, rolled back or a dry run: not retried.",
                    messages.WARNING,
                )
                continue
            if refused_unread(self, request, run):
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
