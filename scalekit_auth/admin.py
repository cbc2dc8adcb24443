"""The admin of ``scalekit_auth``: identities, their sessions, the rollout switch, and two
read-only logs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest

from . import session
from .models import AuthEvent, RolloutSettings, ScalekitIdentity, ScalekitSession, WebhookEvent

ENDED_MESSAGE = "Ended from the admin: that browser is logged out at its next request."


@admin.register(ScalekitIdentity)
class ScalekitIdentityAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "scalekit_user_id",
        "organization_id",
        "external_id",
        "linked_by",
        "last_login_at",
    )
    list_filter = ("linked_by",)
    search_fields = (
        "user__username",
        "user__email",
        "scalekit_user_id",
        "external_id",
        "organization_id",
    )
    readonly_fields = (
        "created_at",
        "last_login_at",
        "roles",
        "roles_event_at",
        "status_event_at",
        "profile_event_at",
        "deactivated_by_event",
    )
    raw_id_fields = ("user",)


@admin.register(ScalekitSession)
class ScalekitSessionAdmin(admin.ModelAdmin):
    """The sessions holding Scalekit tokens. Ending one logs that browser out at its next
    request; deactivating the user ends all of them.

    Ending sessions needs the ``change_scalekitsession`` permission (viewing them does not
    allow it), and leaves a ``LogEntry`` per ended session. The rows themselves are never
    edited: a row's own page stays read-only even for holders of that permission.
    """

    list_display = ("user", "scalekit_session_id", "created_at")
    search_fields = ("user__username", "user__email", "scalekit_session_id")
    date_hierarchy = "created_at"
    actions = ["end_sessions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The model-wide permission (which the action asks for); never one row's edit form."""
        return obj is None and super().has_change_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deleting the row alone would leave the session
        return actions

    @admin.action(
        description="End the selected sessions (log those browsers out)", permissions=["change"]
    )
    def end_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        rows = list(queryset.select_related("user"))
        ended = session.end_session_records(rows)
        LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=rows,
            action_flag=DELETION,
            change_message=ENDED_MESSAGE,
        )
        self.message_user(request, f"{ended} session(s) ended.", messages.SUCCESS)


@admin.register(RolloutSettings)
class RolloutSettingsAdmin(admin.ModelAdmin):
    """The kill switch and percentage. One row; every change is in the admin's history."""

    list_display = ("__str__", "enabled", "percentage", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")
    fields = ("enabled", "percentage", "allow_list", "deny_list", "updated_at", "updated_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RolloutSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: RolloutSettings, form: Any, change: bool
    ) -> None:
        obj.updated_by = request.user.get_username()
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A log: viewable, never added, changed or deleted from the admin (not even by a superuser,
    so that no one can erase the trace of what they did). Old auth events go by retention
    (``scalekit_auth_purge_events``)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuthEvent)
class AuthEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "success",
        "reason",
        "user",
        "organization_id",
        "ip_address",
    )
    list_filter = ("kind", "success", ("created_at", admin.DateFieldListFilter))
    search_fields = ("reason", "scalekit_user_id", "organization_id", "user__username")
    date_hierarchy = "created_at"


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "type", "event_id", "organization_id", "outcome")
    list_filter = ("type",)
    search_fields = ("event_id", "organization_id", "outcome")
