"""The admin of ``scalekit_auth``: identities, their sessions, the rollout switch, and two
read-only logs."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.fields import DateTimeField
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.timezone import localtime

from . import session
from .conf import app_settings
from .models import AuthEvent, RolloutSettings, ScalekitIdentity, ScalekitSession, WebhookEvent

ENDED_MESSAGE = "Ended from the admin: that browser is logged out at its next request."


def relink_policy() -> str:
    """What the next Scalekit login of an unlinked Scalekit user does, under the settings."""
    steps = []
    if app_settings.LINK_BY_EXTERNAL_ID:
        steps.append("the Django user whose external id is its xuid claim")
    if app_settings.LINK_BY_EMAIL:
        steps.append(
            "the Django user with its verified email (LINK_BY_EMAIL: whoever signs in to "
            "Scalekit with that email gets the account)"
        )
    steps.append("a new Django user" if app_settings.CREATE_USERS else "refused (CREATE_USERS off)")
    return "The next Scalekit login of that Scalekit user links to " + ", else ".join(steps) + "."


@admin.register(ScalekitIdentity)
class ScalekitIdentityAdmin(admin.ModelAdmin):
    """The links between Django users and Scalekit users, as logins and webhooks made them.

    Never added or edited here: whoever could point a Scalekit user id at a Django account
    would sign in as that account at their next Scalekit login. Deleting one (unlinking) needs
    the delete permission, ends that user's Scalekit sessions and leaves a ``LogEntry`` saying
    how the next login will link; only a superuser may unlink a superuser, since with
    ``LINK_BY_EMAIL`` the account then goes to whoever signs in with its email.
    """

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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or not obj.user.is_superuser or request.user.is_superuser

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        return LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=queryset,
            action_flag=DELETION,
            change_message="Unlinked from the admin; the user's Scalekit sessions were ended. "
            + relink_policy(),
        )

    def delete_model(self, request: HttpRequest, obj: ScalekitIdentity) -> None:
        self.delete_queryset(request, ScalekitIdentity.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        identities = list(queryset.select_related("user"))
        ended = sum(session.end_sessions(identity.user) for identity in identities)
        ScalekitIdentity.objects.filter(pk__in=[identity.pk for identity in identities]).delete()
        level = messages.WARNING if app_settings.LINK_BY_EMAIL else messages.INFO
        self.message_user(
            request,
            f"{len(identities)} identit{'y' if len(identities) == 1 else 'ies'} unlinked, "
            f"{ended} Scalekit session(s) ended. {relink_policy()}",
            level,
        )


def _stores_sessions_in_database() -> bool:
    return issubclass(import_module(settings.SESSION_ENGINE).SessionStore, DatabaseSessionStore)


class SessionStateFilter(admin.SimpleListFilter):
    """Whether the Django session behind the row is still live (database session engines)."""

    title = "Django session"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        if not _stores_sessions_in_database():
            return []
        return [
            ("live", "Live"),
            ("expired", "Expired (not yet cleared)"),
            ("gone", "Gone (logged out or cleared)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "gone":
            return queryset.filter(expires_at__isnull=True)
        return queryset


class UserActiveFilter(admin.BooleanFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "user active"


@admin.register(ScalekitSession)
class ScalekitSessionAdmin(admin.ModelAdmin):
    """The sessions holding Scalekit tokens. Ending one logs that browser out at its next
    request; deactivating the user ends all of them.

    Ending sessions needs the ``change_scalekitsession`` permission (viewing them does not
    allow it), and leaves a ``LogEntry`` per ended session. The rows themselves are never
    edited: a row's own page stays read-only even for holders of that permission. Its Delete
    button (``delete_scalekitsession``) ends the session the same way: a row deleted alone would
    leave the Django session and its tokens alive, out of reach of a later deactivation.

    With a database session engine, the list shows when each Django session expires.
    """

    list_display = ("user", "scalekit_session_id", "created_at", "expires")
    list_filter = (SessionStateFilter, ("user__is_active", UserActiveFilter))
    search_fields = ("user__username", "user__email", "scalekit_session_id")
    date_hierarchy = "created_at"
    actions = ["end_sessions"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if not _stores_sessions_in_database():
            return queryset.annotate(expires_at=Value(None, output_field=DateTimeField()))
        model = import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()
        expiry = model.objects.filter(session_key=OuterRef("session_key")).values("expire_date")
        return queryset.annotate(expires_at=Subquery(expiry[:1]))

    @admin.display(description="Expires", ordering=F("expires_at").asc(nulls_first=True))
    def expires(self, obj: ScalekitSession) -> str:
        if obj.expires_at is None:
            return "gone" if _stores_sessions_in_database() else "-"
        shown = localize(localtime(obj.expires_at))
        return f"{shown} (expired)" if obj.expires_at <= timezone.now() else shown

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The model-wide permission (which the action asks for); never one row's edit form."""
        return obj is None and super().has_change_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the end_sessions action does it, by its name
        return actions

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        return LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=queryset,
            action_flag=DELETION,
            change_message=ENDED_MESSAGE,
        )

    def delete_model(self, request: HttpRequest, obj: ScalekitSession) -> None:
        session.end_session_records([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        session.end_session_records(queryset)

    @admin.action(
        description="End the selected sessions (log those browsers out)", permissions=["change"]
    )
    def end_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        rows = list(queryset.select_related("user"))
        ended = session.end_session_records(rows)
        self.log_deletions(request, rows)
        self.message_user(request, f"{ended} session(s) ended.", messages.SUCCESS)


@admin.register(RolloutSettings)
class RolloutSettingsAdmin(admin.ModelAdmin):
    """The kill switch and percentage. One row; every change is in the admin's history.

    Until the row is saved the settings decide (``ROLLOUT_PERCENTAGE``), and the add form
    starts from them, so saving it only to deny a domain changes nothing else.
    """

    list_display = ("__str__", "enabled", "percentage", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")
    fields = ("enabled", "percentage", "allow_list", "deny_list", "updated_at", "updated_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RolloutSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "enabled": True,
            "percentage": int(app_settings.ROLLOUT_PERCENTAGE),
            **super().get_changeform_initial_data(request),
        }

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET" and not RolloutSettings.objects.exists():
            self.message_user(
                request,
                f"No rollout row yet: the settings apply (ROLLOUT_PERCENTAGE = "
                f"{app_settings.ROLLOUT_PERCENTAGE}%, no allow or deny list). Adding the row "
                "starts from them.",
                messages.INFO,
            )
        return super().changelist_view(request, extra_context)

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
    list_filter = (
        "kind",
        "success",
        ("created_at", admin.DateFieldListFilter),
        ("organization_id", admin.AllValuesFieldListFilter),
    )
    list_select_related = ("user",)
    search_fields = (
        "reason",
        "scalekit_user_id",
        "organization_id",
        "user__username",
        "ip_address",
    )
    date_hierarchy = "created_at"


class WebhookOutcomeFilter(admin.SimpleListFilter):
    """The outcomes ``scalekit_auth.webhooks`` writes, by what they did. One event can do
    several things ("; " between them), so it can be in more than one group; "Other" is every
    event in none of them (roles set, profiles updated, users kept active...)."""

    title = "outcome"
    parameter_name = "outcome"
    GROUPS = {
        "ignored": ("Ignored (type not handled)", Q(outcome="ignored")),
        "no_user": (
            "No linked user matched",
            Q(outcome__startswith="no linked user")
            | Q(outcome__contains="several linked users")
            | Q(outcome__contains="last logged in through"),
        ),
        "stale": (
            "Older than the last one applied",
            Q(outcome__contains="older than the last one applied"),
        ),
        "deactivated": ("Deactivated a user", Q(outcome__contains=" deactivated: ")),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.GROUPS.items()] + [("other", "Other")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in self.GROUPS:
            return queryset.filter(self.GROUPS[self.value()][1])
        if self.value() == "other":
            for _, condition in self.GROUPS.values():
                queryset = queryset.exclude(condition)
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    """Every row is an event applied: one that failed to apply left no row (Scalekit delivers
    it again) and is in the auth events, kind Webhook, failed."""

    list_display = ("received_at", "type", "event_id", "organization_id", "outcome")
    list_filter = (
        WebhookOutcomeFilter,
        "type",
        ("received_at", admin.DateFieldListFilter),
        ("organization_id", admin.AllValuesFieldListFilter),
    )
    search_fields = ("event_id", "organization_id", "outcome")
    date_hierarchy = "received_at"
