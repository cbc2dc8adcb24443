"""The admin of scalekit_auth: the event logs can be read but never edited or deleted, the
rollout row is one row whose every change is attributed, and ending sessions needs the change
permission and leaves a LogEntry per session."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.cached_db import SessionStore
from django.urls import reverse

from scalekit_auth.admin import ENDED_MESSAGE
from scalekit_auth.models import RolloutSettings, ScalekitSession

from .factories import (
    AuthEventFactory,
    RolloutSettingsFactory,
    ScalekitIdentityFactory,
    SuperUserFactory,
    UserFactory,
    WebhookEventFactory,
)

pytestmark = pytest.mark.django_db

LEGACY_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def admin_client(client):
    """A superuser logged in with the legacy backend (the admin's own login)."""
    client.force_login(SuperUserFactory(), backend=LEGACY_BACKEND)
    return client


def url(name: str, *args) -> str:
    return reverse(f"admin:scalekit_auth_{name}", args=args)


# -- the event logs ---------------------------------------------------------------------------


def test_auth_events_are_listed_with_their_reason(admin_client):
    AuthEventFactory(kind="bearer", success=False, reason="token refused: expired")
    AuthEventFactory(kind="login", reason="hosted login")
    response = admin_client.get(url("authevent_changelist"))
    assert response.status_code == 200
    assert b"token refused: expired" in response.content and b"hosted login" in response.content
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(
        response.wsgi_request
    )
    assert url("authevent_add").encode() not in response.content


@pytest.mark.parametrize(
    ("factory", "name"),
    [(AuthEventFactory, "authevent"), (WebhookEventFactory, "webhookevent")],
)
def test_even_a_superuser_cannot_delete_a_logged_event(admin_client, factory, name):
    row = factory()
    assert admin_client.get(url(f"{name}_delete", row.pk)).status_code == 403
    assert admin_client.post(url(f"{name}_delete", row.pk), {"post": "yes"}).status_code == 403
    response = admin_client.post(
        url(f"{name}_changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize(
    ("factory", "name"),
    [(AuthEventFactory, "authevent"), (WebhookEventFactory, "webhookevent")],
)
def test_logged_events_are_read_only(admin_client, factory, name):
    row = factory()
    assert admin_client.get(url(f"{name}_add")).status_code == 403
    page = admin_client.get(url(f"{name}_change", row.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert b'name="_save"' not in page.content
    before = {f.name: getattr(row, f.name) for f in type(row)._meta.fields}
    assert admin_client.post(url(f"{name}_change", row.pk), {"reason": "x"}).status_code == 403
    row.refresh_from_db()
    assert {f.name: getattr(row, f.name) for f in type(row)._meta.fields} == before


def test_events_are_filtered_by_kind_and_outcome(admin_client):
    AuthEventFactory(kind="bearer", success=False, reason="token refused: malformed")
    AuthEventFactory(kind="login", success=True)
    response = admin_client.get(
        url("authevent_changelist"), {"kind": "bearer", "success__exact": "0"}
    )
    assert [e.kind for e in response.context["cl"].result_list] == ["bearer"]


# -- identities and the rollout row -----------------------------------------------------------


def test_identities_are_found_by_scalekit_user_id(admin_client):
    wanted = ScalekitIdentityFactory(scalekit_user_id="usr_wanted")
    ScalekitIdentityFactory()
    response = admin_client.get(url("scalekitidentity_changelist"), {"q": "usr_wanted"})
    assert list(response.context["cl"].result_list) == [wanted]


def test_rollout_row_change_is_attributed_and_logged(admin_client):
    row = RolloutSettingsFactory(percentage=100)
    response = admin_client.post(
        url("rolloutsettings_change", row.pk),
        {"enabled": "", "percentage": "10", "allow_list": "", "deny_list": "@legacy.example"},
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    row.refresh_from_db()
    assert (row.enabled, row.percentage, row.deny_list) == (False, 10, "@legacy.example")
    admin = response.wsgi_request.user
    assert row.updated_by == admin.get_username()
    entry = LogEntry.objects.get(object_id=str(row.pk))
    assert (entry.user, entry.action_flag) == (admin, CHANGE)


def test_there_is_one_rollout_row_and_it_cannot_be_deleted(admin_client):
    assert admin_client.get(url("rolloutsettings_add")).status_code == 200
    row = RolloutSettingsFactory()
    assert admin_client.get(url("rolloutsettings_add")).status_code == 403
    assert (
        admin_client.post(url("rolloutsettings_delete", row.pk), {"post": "yes"}).status_code == 403
    )
    assert RolloutSettings.objects.count() == 1


# -- sessions holding Scalekit tokens ---------------------------------------------------------


def test_ending_sessions_from_the_admin_logs_those_browsers_out(admin_client):
    identity = ScalekitIdentityFactory()
    keys = []
    for sid in ("ses_1", "ses_2", "ses_3"):
        store = SessionStore()
        store["_auth_user_id"] = str(identity.user.pk)
        store.create()
        keys.append(store.session_key)
        ScalekitSession.objects.create(
            user=identity.user, session_key=store.session_key, scalekit_session_id=sid
        )
    listing = admin_client.get(url("scalekitsession_changelist"))
    assert listing.status_code == 200 and b"ses_2" in listing.content
    assert b"delete_selected" not in listing.content

    chosen = ScalekitSession.objects.filter(scalekit_session_id__in=["ses_1", "ses_2"])
    chosen_rows = list(chosen.order_by("pk"))
    response = admin_client.post(
        url("scalekitsession_changelist"),
        {"action": "end_sessions", "_selected_action": [row.pk for row in chosen_rows]},
        follow=True,
    )

    assert b"2 session(s) ended." in response.content
    assert [SessionStore().exists(key) for key in keys] == [False, False, True]
    assert list(ScalekitSession.objects.values_list("scalekit_session_id", flat=True)) == ["ses_3"]
    entries = LogEntry.objects.order_by("object_id")
    assert [(e.object_id, e.action_flag, e.user) for e in entries] == [
        (str(row.pk), DELETION, response.wsgi_request.user) for row in chosen_rows
    ]
    assert {e.change_message for e in entries} == {ENDED_MESSAGE}
    assert {e.content_type.model_class() for e in entries} == {ScalekitSession}


def stored_session(user) -> tuple[str, ScalekitSession]:
    """A real session of ``user`` in the session store, and its ``ScalekitSession`` row."""
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store.create()
    row = ScalekitSession.objects.create(
        user=user, session_key=store.session_key, scalekit_session_id="ses_1"
    )
    return store.session_key, row


def staff_with(client, *codenames: str):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(staff, backend=LEGACY_BACKEND)
    return client


def test_staff_who_may_only_view_sessions_cannot_end_them(client):
    viewer = staff_with(client, "view_scalekitsession")
    key, row = stored_session(ScalekitIdentityFactory().user)

    listing = viewer.get(url("scalekitsession_changelist"))
    assert listing.status_code == 200 and b"ses_1" in listing.content
    assert b"end_sessions" not in listing.content
    viewer.post(
        url("scalekitsession_changelist"),
        {"action": "end_sessions", "_selected_action": [row.pk]},
        follow=True,
    )

    assert SessionStore().exists(key) and ScalekitSession.objects.filter(pk=row.pk).exists()
    assert not LogEntry.objects.exists()


def test_staff_who_may_change_sessions_end_them_but_never_edit_a_row(client):
    changer = staff_with(client, "change_scalekitsession")
    key, row = stored_session(ScalekitIdentityFactory().user)

    page = changer.get(url("scalekitsession_change", row.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert b'name="_save"' not in page.content
    assert changer.post(url("scalekitsession_change", row.pk), {}).status_code == 403

    response = changer.post(
        url("scalekitsession_changelist"),
        {"action": "end_sessions", "_selected_action": [row.pk]},
        follow=True,
    )
    assert b"1 session(s) ended." in response.content
    assert not SessionStore().exists(key)
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag, entry.user, entry.change_message) == (
        str(row.pk),
        DELETION,
        response.wsgi_request.user,
        ENDED_MESSAGE,
    )


def test_the_daily_purge_task_applies_the_retention(settings):
    from datetime import timedelta

    from django.utils import timezone

    from scalekit_auth.models import AuthEvent
    from scalekit_auth.tasks import purge_events

    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "EVENT_RETENTION_DAYS": 30}
    AuthEventFactory(reason="old", created_at=timezone.now() - timedelta(days=31))
    AuthEventFactory(reason="recent", created_at=timezone.now() - timedelta(days=29))

    result = purge_events()

    assert result["older_than_days"] == 30
    assert list(AuthEvent.objects.values_list("reason", flat=True)) == ["recent"]
