"""The readiness admin: the checklist with statuses, sign-offs and history, the check runs, and a
dashboard (progress per section, blockers first, changes since the last run, export)."""

from __future__ import annotations

import threading
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from . import report as report_module
from . import signoffs
from .dashboard import dashboard_context, item_report
from .forms import ApplicabilityForm, RevokeForm, SignOffForm
from .models import (
    ChecklistItem,
    CheckResult,
    CheckRun,
    ItemEvent,
    ItemStatus,
    Section,
    SignOff,
    SignOffRevocation,
)
from .runner import run_checks, select_probes
from .status import active_signoff, latest_signoff, section_progress, signoff_problem

STATUS_COLOURS = {
    ItemStatus.TODO: "#6b7280",
    ItemStatus.PASSING: "#15803d",
    ItemStatus.FAILING: "#b91c1c",
    ItemStatus.NOT_APPLICABLE: "#9ca3af",
    ItemStatus.SIGNED_OFF: "#1d4ed8",
}
OUTCOME_COLOURS = {
    "pass": "#15803d",
    "warn": "#b45309",
    "fail": "#b91c1c",
    "error": "#7f1d1d",
    "waived": "#7c3aed",
    "skip": "#6b7280",
}


def badge(text: str, colour: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'font-size:11px;white-space:nowrap">{}</span>',
        colour,
        text,
    )


def progress_bar(percent: int) -> str:
    colour = "#15803d" if percent == 100 else "#2563eb"
    return format_html(
        '<div style="width:140px;background:#e5e7eb;border-radius:4px;display:inline-block">'
        '<div style="width:{}%;background:{};height:10px;border-radius:4px"></div></div> {}%',
        percent,
        colour,
        percent,
    )


#: Users offered per page by the owner search.
OWNER_PAGE_SIZE = 20
OWNER_INVALID = (
    "Choose an active staff member as the owner: only they can work on the checklist. "
    "Type part of a name, username or email to find one."
)


def _user_fields() -> set[str]:
    return {f.name for f in get_user_model()._meta.get_fields()}


def owner_candidates(keep: Any = None) -> QuerySet:
    """Who may own a checklist item: active staff, the people who work in this admin (a user
    model without ``is_staff`` or ``is_active`` is not filtered on the one it lacks).

    ``keep`` (a user's pk) stays valid too, so that an item whose owner has since left the staff
    can be saved without choosing a new owner.
    """
    user_model = get_user_model()
    fields = _user_fields()
    users = user_model._default_manager.order_by(user_model.USERNAME_FIELD)
    flags = {name: True for name in ("is_staff", "is_active") if name in fields}
    if not flags:
        return users
    return users.filter(Q(**flags) | Q(pk=keep)) if keep is not None else users.filter(**flags)


def search_owners(term: str) -> QuerySet:
    """Owner candidates whose username, first or last name or email contains every word of
    ``term``."""
    user_model = get_user_model()
    fields = _user_fields()
    names = [
        name
        for name in dict.fromkeys((user_model.USERNAME_FIELD, "first_name", "last_name", "email"))
        if name in fields
    ]
    users = owner_candidates()
    for word in term.split():
        matches = Q()
        for name in names:
            matches |= Q(**{f"{name}__icontains": word})
        users = users.filter(matches)
    return users


def owner_label(user: Any) -> str:
    username = user.get_username()
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{name} ({username})" if name and name != username else username


class OwnerSelect(AutocompleteSelect):
    """Django's autocomplete select, fed by the checklist's own search of active staff
    (``ChecklistItemAdmin.owner_search_view``): the item page renders only the current owner
    instead of every user, and whoever may edit items may pick an owner without also needing
    the permission to view users that Django's own autocomplete asks for."""

    def get_url(self) -> str:
        return reverse(f"{self.admin_site.name}:readiness_owner_search")


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whoever may see the item may see its sign-offs and history."""
        parent = self.admin_site._registry[self.parent_model]
        return parent.has_view_or_change_permission(request, obj)


class SignOffInline(ReadOnlyInline):
    model = SignOff
    fields = (
        "signed_at",
        "signer_name",
        "signer_role",
        "environment",
        "release",
        "evidence_url",
        "evidence_text",
        "notes",
        "expires_at",
        "covers",
        "state",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("item__section", "revocation")

    @admin.display(description="state")
    def state(self, obj: SignOff) -> str:
        from .status import signoff_problem, signoff_staleness

        problem = signoff_problem(obj)
        if problem == "revoked":
            return f"revoked by {obj.revocation.revoked_by_name}: {obj.revocation.reason}"
        if problem == "stale":
            return f"stale: {signoff_staleness(obj)}"
        return problem or "active"


class ItemEventInline(ReadOnlyInline):
    model = ItemEvent
    verbose_name_plural = "history"
    fields = ("created_at", "actor_name", "action", "from_status", "to_status", "message")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("item")


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ("title", "checklist", "order", "progress", "blocked_by", "not_applicable")
    list_filter = ("checklist", "not_applicable", "retired")
    readonly_fields = (
        "key",
        "checklist",
        "title",
        "description",
        "order",
        "not_applicable",
        "na_reason",
        "retired",
    )
    ordering = ("checklist", "order")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()  # one ModelAdmin serves every thread

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        self._local.progress = {row.section.pk: row for row in section_progress()}
        try:
            response = super().changelist_view(request, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()  # while the progress is at hand
            return response
        finally:
            self._local.progress = None

    def _row(self, obj: Section) -> Any:
        progress = getattr(self._local, "progress", None)
        if progress is None:
            progress = {r.section.pk: r for r in section_progress(obj.checklist)}
        return progress.get(obj.pk)

    @admin.display(description="progress")
    def progress(self, obj: Section) -> str:
        row = self._row(obj)
        return progress_bar(row.percent) if row else "-"

    @admin.display(description="blocked by")
    def blocked_by(self, obj: Section) -> str:
        row = self._row(obj)
        return ", ".join(s.title for s in row.blocked_by) if row and row.blocked_by else "-"

    def get_urls(self) -> list:
        return [
            path(
                "<int:pk>/applicability/",
                self.admin_site.admin_view(self.applicability_view),
                name="readiness_section_applicability",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_mark_not_applicable": can_mark_not_applicable(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def applicability_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        section = get_object_or_404(Section, pk=pk)
        require_mark_not_applicable(request)
        form = ApplicabilityForm(
            request.POST or None, initial={"applicable": "0" if not section.not_applicable else "1"}
        )
        if request.method == "POST" and form.is_valid():
            try:
                signoffs.set_section_applicable(
                    section,
                    request.user,
                    form.cleaned_data["applicable"],
                    form.cleaned_data["reason"],
                )
            except signoffs.SignOffError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Section '{section.title}' updated.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:readiness_section_changelist"))
        return action_page(request, self, section, form, f"Applicability of '{section.title}'")


def can_mark_not_applicable(request: HttpRequest) -> bool:
    """Whether the applicability pages are worth a link: only this permission opens them."""
    return request.user.has_perm(signoffs.NA_PERMISSION)


def require_mark_not_applicable(request: HttpRequest) -> None:
    """Refuse an applicability page (its form as well as its saving) without the permission."""
    if not can_mark_not_applicable(request):
        raise PermissionDenied


def action_page(
    request: HttpRequest,
    model_admin: admin.ModelAdmin,
    obj: Any,
    form: Any,
    title: str,
    extra: dict | None = None,
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": obj,
        "form": form,
        "title": title,
        **(extra or {}),
    }
    return TemplateResponse(request, "admin/readiness/item_action.html", context)


@admin.register(ChecklistItem)
class ChecklistItemAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "title",
        "section",
        "coloured_status",
        "outcome",
        "kind",
        "severity",
        "owner",
        "signed_off_by",
        "signed_off_at",
    )
    list_display_links = ("key", "title")
    list_filter = ("section__checklist", "section", "status", "kind", "severity", "retired")
    search_fields = ("key", "title", "guidance", "last_message")
    list_select_related = ("section", "owner", "signed_off_by")
    actions = ("run_selected_checks",)
    fieldsets = (
        (None, {"fields": ("key", "title", "section", "kind", "severity", "asvs", "guidance")}),
        (
            "State",
            {
                "fields": (
                    "coloured_status",
                    "last_outcome",
                    "last_message",
                    "last_checked",
                    "not_applicable",
                    "na_reason",
                    "signed_off_by",
                    "signed_off_at",
                )
            },
        ),
        (
            "Ownership and evidence",
            {
                "fields": (
                    "owner",
                    "evidence_text",
                    "evidence_url",
                    "signer_role",
                    "evidence_hint",
                    "reattest",
                )
            },
        ),
        ("Automated checks", {"fields": ("recent_results",)}),
    )
    readonly_fields = (
        "key",
        "title",
        "section",
        "kind",
        "severity",
        "asvs",
        "guidance",
        "coloured_status",
        "last_outcome",
        "last_message",
        "last_checked",
        "not_applicable",
        "na_reason",
        "signed_off_by",
        "signed_off_at",
        "signer_role",
        "evidence_hint",
        "reattest",
        "recent_results",
    )
    inlines = (SignOffInline, ItemEventInline)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_run_checks_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("readiness.run_checks")

    def has_sign_off_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("readiness.sign_off_item")

    @admin.display(description="status", ordering="status")
    def coloured_status(self, obj: ChecklistItem) -> str:
        return badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "#000"))

    @admin.display(description="checks", ordering="last_outcome")
    def outcome(self, obj: ChecklistItem) -> str:
        if not obj.last_outcome:
            return "-"
        return badge(obj.last_outcome, OUTCOME_COLOURS.get(obj.last_outcome, "#000"))

    @admin.display(description="last checked", ordering="last_checked_at")
    def last_checked(self, obj: ChecklistItem) -> Any:
        return obj.last_checked_at or "never"

    @admin.display(description="latest results")
    def recent_results(self, obj: ChecklistItem) -> str:
        results = list(
            obj.results.select_related("run").order_by("-run__started_at", "probe_id")[:12]
        )
        if not results:
            return "No automated check has run for this item." if obj.kind != "manual" else "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    r.run.started_at.strftime("%Y-%m-%d %H:%M"),
                    r.probe_id,
                    badge(r.status, OUTCOME_COLOURS.get(r.status, "#000")),
                    r.message,
                    r.hint,
                )
                for r in results
            ),
        )
        return format_html(
            "<table><tr><th>run</th><th>check</th><th>result</th><th>message</th>"
            "<th>hint</th></tr>{}</table>",
            rows,
        )

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> Any:
        if db_field.name != "owner":
            return super().formfield_for_foreignkey(db_field, request, **kwargs)
        kwargs["widget"] = OwnerSelect(db_field, self.admin_site)
        kwargs["queryset"] = owner_candidates()
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        field.label_from_instance = owner_label
        field.error_messages["invalid_choice"] = OWNER_INVALID
        return field

    def get_form(
        self, request: HttpRequest, obj: ChecklistItem | None = None, change: bool = False, **kwargs
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        owner = form.base_fields.get("owner")
        if owner is not None and obj is not None and obj.owner_id is not None:
            owner.queryset = owner_candidates(keep=obj.owner_id)
        return form

    def owner_search_view(self, request: HttpRequest) -> JsonResponse:
        """The owner select's suggestions, in the shape Django's autocomplete script reads."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        page = Paginator(search_owners(request.GET.get("term", "")), OWNER_PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        return JsonResponse(
            {
                "results": [{"id": str(user.pk), "text": owner_label(user)} for user in page],
                "pagination": {"more": page.has_next()},
            }
        )

    def save_model(self, request: HttpRequest, obj: ChecklistItem, form: Any, change: bool) -> None:
        before = (
            ChecklistItem.objects.filter(pk=obj.pk)
            .values("owner_id", "evidence_text", "evidence_url")
            .first()
            or {}
        )
        super().save_model(request, obj, form, change)
        signoffs.record_item_edit(obj, before, request.user)

    @admin.action(
        description="Run the checks of the selected items now", permissions=["run_checks"]
    )
    def run_selected_checks(self, request: HttpRequest, queryset: QuerySet) -> None:
        keys = list(queryset.values_list("key", flat=True))
        probes = select_probes(items=keys)
        if not probes:
            self.message_user(
                request, "None of the selected items has an automated check.", messages.WARNING
            )
            return
        self._run(request, probes)

    def _run(self, request: HttpRequest, probes: list | None) -> Any:
        report = run_checks(probes, trigger=CheckRun.Trigger.ADMIN, user=request.user)
        LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=[report.run],
            action_flag=ADDITION,
            change_message=f"Ran {len(report.outcomes)} readiness checks",
            single_object=True,
        )
        counts = report.counts()
        level = messages.ERROR if report.failing_blockers else messages.SUCCESS
        self.message_user(
            request,
            f"Run #{report.run.pk}: {len(report.outcomes)} checks, {counts['pass']} passed, "
            f"{counts['fail'] + counts['error']} failed, {counts['warn']} warned; "
            f"{len(report.failing_blockers)} failing blocker(s).",
            level,
        )
        return report

    # --- extra pages -----------------------------------------------------------------------

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="readiness_dashboard"),
            path("run/", wrap(require_POST(self.run_all_view)), name="readiness_run_all"),
            path("export/", wrap(self.export_view), name="readiness_export"),
            path("status.json", wrap(self.status_view), name="readiness_status"),
            path("owners/", wrap(self.owner_search_view), name="readiness_owner_search"),
            path(
                "<int:pk>/run/", wrap(require_POST(self.run_item_view)), name="readiness_item_run"
            ),
            path("<int:pk>/sign-off/", wrap(self.sign_off_view), name="readiness_item_sign_off"),
            path("<int:pk>/revoke/", wrap(self.revoke_view), name="readiness_item_revoke"),
            path(
                "<int:pk>/applicability/",
                wrap(self.applicability_view),
                name="readiness_item_applicability",
            ),
            *super().get_urls(),
        ]

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        self._require_view(request)
        context = {
            **self.admin_site.each_context(request),
            **dashboard_context(),
            "opts": self.model._meta,
            "title": "Readiness dashboard",
            "can_run": self.has_run_checks_permission(request),
            "can_mark_not_applicable": can_mark_not_applicable(request),
        }
        return TemplateResponse(request, "admin/readiness/dashboard.html", context)

    def run_all_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_run_checks_permission(request):
            raise PermissionDenied
        self._run(request, None)
        return HttpResponseRedirect(reverse("admin:readiness_dashboard"))

    def run_item_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_run_checks_permission(request):
            raise PermissionDenied
        item = get_object_or_404(ChecklistItem, pk=pk)
        probes = select_probes(items=[item.key])
        if probes:
            self._run(request, probes)
        else:
            self.message_user(request, f"{item.key} has no automated check.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:readiness_checklistitem_change", args=[pk]))

    def export_view(self, request: HttpRequest) -> HttpResponse:
        self._require_view(request)
        fmt = request.GET.get("format", "md")
        if fmt not in report_module.FORMATS:
            return HttpResponse(
                f"Unknown format {fmt!r}; use md or html.", status=400, content_type="text/plain"
            )
        body, content_type = report_module.render_report(fmt)
        response = HttpResponse(body, content_type=content_type)
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="readiness-{stamp}.{fmt}"'
        return response

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """Machine-readable state for monitoring: the last run and each item's status."""
        self._require_view(request)
        context = dashboard_context()
        run = context["last_run"]
        return JsonResponse(
            {
                "done": context["done"],
                "total": context["total"],
                "open_blockers": [row["item"].key for row in context["blockers"]],
                "last_run": None
                if run is None
                else {
                    "id": run.pk,
                    "started_at": run.started_at,
                    "trigger": run.trigger,
                    "counts": run.counts,
                    "failing_blockers": run.failing_blockers,
                },
                "items": {
                    item.key: {
                        "status": item.status,
                        "outcome": item.last_outcome,
                        "section": item.section.key,
                    }
                    for row in section_progress()
                    for item in row.items
                },
            }
        )

    def sign_off_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        item = get_object_or_404(ChecklistItem.objects.select_related("section"), pk=pk)
        if not self.has_sign_off_permission(request):
            raise PermissionDenied
        form = SignOffForm(request.POST or None, initial={"signer_role": item.signer_role})
        if request.method == "POST" and form.is_valid():
            try:
                signoffs.sign_off(item, request.user, **form.cleaned_data)
            except signoffs.SignOffError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{item.key} signed off.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:readiness_checklistitem_change", args=[pk])
                )
        return action_page(
            request,
            self,
            item,
            form,
            f"Sign off {item.key}: {item.title}",
            {"report": item_report(item)},
        )

    def revoke_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        item = get_object_or_404(ChecklistItem, pk=pk)
        if not self.has_sign_off_permission(request):
            raise PermissionDenied
        latest = latest_signoff(item)
        if request.method != "POST" and (latest is None or signoff_problem(latest) == "revoked"):
            self.message_user(request, f"{item.key} has no sign-off to revoke.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:readiness_checklistitem_change", args=[pk]))
        form = RevokeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                signoffs.revoke_latest(item, request.user, form.cleaned_data["reason"])
            except signoffs.SignOffError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Sign-off of {item.key} revoked.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:readiness_checklistitem_change", args=[pk])
                )
        return action_page(request, self, item, form, f"Revoke the sign-off of {item.key}")

    def applicability_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        item = get_object_or_404(ChecklistItem, pk=pk)
        require_mark_not_applicable(request)
        form = ApplicabilityForm(
            request.POST or None, initial={"applicable": "1" if item.not_applicable else "0"}
        )
        if request.method == "POST" and form.is_valid():
            try:
                signoffs.set_item_applicable(
                    item, request.user, form.cleaned_data["applicable"], form.cleaned_data["reason"]
                )
            except signoffs.SignOffError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{item.key} updated.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:readiness_checklistitem_change", args=[pk])
                )
        return action_page(request, self, item, form, f"Applicability of {item.key}")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        can_sign_off = self.has_sign_off_permission(request)
        item = self.get_object(request, object_id) if can_sign_off else None
        extra_context = {
            **(extra_context or {}),
            "can_run": self.has_run_checks_permission(request),
            "can_sign_off": can_sign_off,
            # An expired or stale sign-off no longer counts, a revoked one is done: the link is
            # for an active one.
            "can_revoke": item is not None
            and item.kind != ChecklistItem.Kind.AUTO
            and active_signoff(item) is not None,
            "can_mark_not_applicable": can_mark_not_applicable(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)


class ResultInline(ReadOnlyInline):
    model = CheckResult
    fields = (
        "probe_id",
        "item",
        "title",
        "kind",
        "severity",
        "status",
        "message",
        "observed",
        "hint",
        "duration_ms",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("item")


@admin.register(CheckRun)
class CheckRunAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "trigger",
        "triggered_by",
        "network",
        "failing_blockers",
        "summary",
        "duration",
    )
    list_filter = ("trigger", "network")
    readonly_fields = (
        "started_at",
        "finished_at",
        "trigger",
        "triggered_by",
        "network",
        "counts",
        "failing_blockers",
    )
    inlines = (ResultInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # runs and their results are the append-only history of the checks

    @admin.display(description="results")
    def summary(self, obj: CheckRun) -> str:
        return ", ".join(f"{n} {k}" for k, n in (obj.counts or {}).items() if n)

    @admin.display(description="duration")
    def duration(self, obj: CheckRun) -> str:
        if not obj.finished_at:
            return "-"
        return f"{(obj.finished_at - obj.started_at).total_seconds():.1f} s"


@admin.register(SignOff)
class SignOffAdmin(admin.ModelAdmin):
    """Sign-offs are given from an item's page; here they are listed, never edited."""

    list_display = (
        "item",
        "signer_name",
        "signer_role",
        "signed_at",
        "environment",
        "expires_at",
        "revoked",
    )
    list_filter = ("environment", "item__section")
    list_select_related = ("item",)
    search_fields = ("item__key", "signer_name", "notes")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        revoked = SignOffRevocation.objects.filter(signoff=OuterRef("pk"))
        return super().get_queryset(request).annotate(is_revoked=Exists(revoked))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(boolean=True, ordering="is_revoked")
    def revoked(self, obj: SignOff) -> bool:
        return obj.is_revoked
