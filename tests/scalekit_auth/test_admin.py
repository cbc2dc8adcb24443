"""The admin of scalekit_auth: the event logs can be read but never edited or deleted, and are
searched and filtered in a constant number of queries; the rollout row is one row whose every
change is attributed, which starts from the settings and refuses entries that match no one;
ending sessions (the action or a row's Delete) needs a permission, ends the Django session and
leaves a LogEntry per session; identities are never linked by hand, only unlinked."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.cached_db import SessionStore
from django.urls import reverse

from scalekit_auth import rollout
from scalekit_auth.admin import ENDED_MESSAGE
from scalekit_auth.models import RolloutSettings, ScalekitIdentity, ScalekitSession

from .conftest import add_user, login
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


# -- identities: never linked by hand ---------------------------------------------------------


def scalekit_browser(emulator, email: str):
    """A fresh browser logged in through Scalekit as ``email``; returns it and its user."""
    from django.test import Client

    browser = Client()
    login(browser, emulator, email)
    return browser, get_user_model().objects.get(pk=browser.session["_auth_user_id"])


@pytest.mark.parametrize("admin_is_superuser", [False, True])
def test_no_one_can_point_a_scalekit_user_at_another_account_in_the_admin(
    client, sdk, auth_emulator, admin_is_superuser
):
    target = SuperUserFactory(username="root-legacy")
    add_user(sdk, "mallory@acme.example")
    _, mallory = scalekit_browser(auth_emulator, "mallory@acme.example")
    identity = mallory.scalekit_identity
    before = {f.name: getattr(identity, f.name) for f in ScalekitIdentity._meta.fields}
    if admin_is_superuser:
        client.force_login(SuperUserFactory(), backend=LEGACY_BACKEND)
    else:
        mallory.is_staff = True
        mallory.save()
        mallory.user_permissions.add(
            *Permission.objects.filter(
                codename__in=["add_scalekitidentity", "change_scalekitidentity"]
            )
        )
        client.force_login(mallory, backend=LEGACY_BACKEND)
    form = {
        "user": target.pk,
        "scalekit_user_id": identity.scalekit_user_id,
        "organization_id": "",
        "external_id": str(target.pk),
        "external_organization_id": "",
        "linked_by": "scalekit_id",
    }

    assert client.get(url("scalekitidentity_add")).status_code == 403
    assert client.post(url("scalekitidentity_add"), form).status_code == 403
    page = client.get(url("scalekitidentity_change", identity.pk))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(url("scalekitidentity_change", identity.pk), form).status_code == 403

    identity.refresh_from_db()
    assert {f.name: getattr(identity, f.name) for f in ScalekitIdentity._meta.fields} == before
    assert not ScalekitIdentity.objects.filter(user=target).exists()
    browser, signed_in = scalekit_browser(auth_emulator, "mallory@acme.example")
    assert signed_in == mallory and signed_in != target


def test_unlinking_ends_the_users_sessions_and_logs_how_the_next_login_links(
    admin_client, sdk, auth_emulator, settings
):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "LINK_BY_EMAIL": True}
    add_user(sdk, "ada@acme.example")
    browser, ada = scalekit_browser(auth_emulator, "ada@acme.example")
    key = browser.session.session_key
    identity = ada.scalekit_identity

    response = admin_client.post(
        url("scalekitidentity_delete", identity.pk), {"post": "yes"}, follow=True
    )

    assert not ScalekitIdentity.objects.filter(pk=identity.pk).exists()
    assert not SessionStore().exists(key) and not ScalekitSession.objects.filter(user=ada).exists()
    shown = [str(m) for m in response.context["messages"]]
    assert any("1 Scalekit session(s) ended" in m and "verified email" in m for m in shown), shown
    entry = LogEntry.objects.get(object_id=str(identity.pk))
    assert (entry.action_flag, entry.user) == (DELETION, response.wsgi_request.user)
    assert "sessions were ended" in entry.change_message
    assert "LINK_BY_EMAIL" in entry.change_message
    assert browser.get("/profile/").status_code == 302  # logged out
    _, again = scalekit_browser(auth_emulator, "ada@acme.example")
    assert again == ada and again.scalekit_identity.linked_by == "email"


def test_only_a_superuser_may_unlink_a_superuser(client):
    root = ScalekitIdentityFactory(user=SuperUserFactory())
    plain = ScalekitIdentityFactory()
    staff = staff_with(client, "view_scalekitidentity", "delete_scalekitidentity")

    assert staff.post(url("scalekitidentity_delete", root.pk), {"post": "yes"}).status_code == 403
    staff.post(
        url("scalekitidentity_changelist"),
        {"action": "delete_selected", "_selected_action": [root.pk, plain.pk], "post": "yes"},
    )
    assert ScalekitIdentity.objects.filter(pk__in=[root.pk, plain.pk]).count() == 2
    assert staff.post(url("scalekitidentity_delete", plain.pk), {"post": "yes"}).status_code == 302
    assert list(ScalekitIdentity.objects.all()) == [root]


# -- sessions: a row's Delete ends the session ----------------------------------------------


def test_deleting_a_session_row_ends_that_session_and_is_logged(admin_client):
    user = ScalekitIdentityFactory().user
    key, row = stored_session(user)

    response = admin_client.post(url("scalekitsession_delete", row.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not SessionStore().exists(key) and not ScalekitSession.objects.exists()
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag, entry.change_message) == (
        str(row.pk),
        DELETION,
        ENDED_MESSAGE,
    )


def test_staff_without_the_delete_permission_cannot_delete_a_session_row(client):
    viewer = staff_with(client, "view_scalekitsession", "change_scalekitsession")
    key, row = stored_session(ScalekitIdentityFactory().user)
    assert viewer.post(url("scalekitsession_delete", row.pk), {"post": "yes"}).status_code == 403
    assert SessionStore().exists(key) and ScalekitSession.objects.filter(pk=row.pk).exists()


def test_a_user_holding_scalekit_sessions_can_still_be_deleted_in_the_admin(admin_client):
    user = ScalekitIdentityFactory().user
    stored_session(user)
    page = admin_client.get(reverse("admin:auth_user_delete", args=[user.pk]))
    assert page.status_code == 200 and not page.context["perms_lacking"]
    admin_client.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})
    assert not get_user_model().objects.filter(pk=user.pk).exists()


def test_sessions_list_shows_when_each_django_session_expires_and_filters_on_it(admin_client):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    live_key, live = stored_session(ScalekitIdentityFactory().user)
    expired_key, expired = stored_session(ScalekitIdentityFactory().user)
    Session.objects.filter(pk=expired_key).update(expire_date=timezone.now() - timedelta(hours=1))
    gone = ScalekitSession.objects.create(
        user=ScalekitIdentityFactory().user, session_key="k" * 32, scalekit_session_id="ses_gone"
    )

    response = admin_client.get(url("scalekitsession_changelist"))
    shown = {
        row.pk: response.context["cl"].model_admin.expires(row)
        for row in response.context["cl"].result_list
    }
    assert shown[gone.pk] == "gone"
    assert shown[expired.pk].endswith("(expired)")
    assert shown[live.pk] and not shown[live.pk].endswith("(expired)") and shown[live.pk] != "gone"
    for state, wanted in (("live", live), ("expired", expired), ("gone", gone)):
        listing = admin_client.get(url("scalekitsession_changelist"), {"state": state})
        assert list(listing.context["cl"].result_list) == [wanted], state


def test_without_a_database_session_engine_the_expiry_is_not_guessed(client, settings):
    stored_session(ScalekitIdentityFactory().user)
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    client.force_login(SuperUserFactory(), backend=LEGACY_BACKEND)
    response = client.get(url("scalekitsession_changelist"))
    assert response.status_code == 200
    (row,) = response.context["cl"].result_list
    assert response.context["cl"].model_admin.expires(row) == "-"
    assert b"state=live" not in response.content


# -- the logs: query count, search and filters ----------------------------------------------


def changelist_queries(client, name: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url(f"{name}_changelist")).status_code == 200
    return len(queries)


def test_auth_event_list_makes_as_many_queries_for_50_rows_as_for_5(admin_client):
    for _ in range(5):
        AuthEventFactory(user=UserFactory(), organization_id="org_acme")
    changelist_queries(admin_client, "authevent")
    five = changelist_queries(admin_client, "authevent")
    for _ in range(45):
        AuthEventFactory(user=UserFactory(), organization_id="org_acme")
    assert changelist_queries(admin_client, "authevent") == five


def test_auth_events_are_found_by_ip_and_filtered_by_organization(admin_client):
    AuthEventFactory(reason="from acme", ip_address="203.0.113.7", organization_id="org_acme")
    AuthEventFactory(reason="from globex", ip_address="198.51.100.9", organization_id="org_globex")

    def reasons(**query) -> list[str]:
        response = admin_client.get(url("authevent_changelist"), query)
        return [event.reason for event in response.context["cl"].result_list]

    assert reasons(q="203.0.113.7") == ["from acme"]
    assert reasons(organization_id="org_globex") == ["from globex"]


def test_webhook_events_are_filtered_by_outcome_and_date(admin_client, client, auth_emulator):
    from datetime import timedelta

    from django.utils import timezone

    from scalekit_auth.models import WebhookEvent

    from .test_webhooks import event, membership_data, occurred, post_event

    linked = ScalekitIdentityFactory(organization_id="org_acme", roles=["member"])
    sub = linked.scalekit_user_id
    updated = "user.organization_membership_updated"
    deliveries = {
        "evt_ignored": event("evt_ignored", "organization.created", {"id": "org_acme"}),
        "evt_nouser": event(
            "evt_nouser", updated, membership_data("org_acme", "usr_nobody", ("org_acme", []))
        ),
        "evt_roles": event(
            "evt_roles", updated, membership_data("org_acme", sub, ("org_acme", ["admin"]))
        ),
        "evt_stale": event(
            "evt_stale",
            updated,
            membership_data("org_acme", sub, ("org_acme", ["member"])),
            at=occurred(-3600),
        ),
        "evt_gone": event(
            "evt_gone",
            "user.organization_membership_deleted",
            membership_data("org_acme", sub),
        ),
    }
    for payload in deliveries.values():
        assert post_event(client, payload).status_code == 200, payload["id"]
    outcomes = dict(WebhookEvent.objects.values_list("event_id", "outcome"))

    def listed(**query) -> set[str]:
        response = admin_client.get(url("webhookevent_changelist"), query)
        return {row.event_id for row in response.context["cl"].result_list}

    assert listed(outcome="ignored") == {"evt_ignored"}, outcomes
    assert listed(outcome="no_user") == {"evt_nouser"}, outcomes
    assert listed(outcome="stale") == {"evt_stale"}, outcomes
    assert listed(outcome="deactivated") == {"evt_gone"}, outcomes
    assert listed(outcome="other") == {"evt_roles"}, outcomes

    last_year = timezone.now() - timedelta(days=400)
    WebhookEvent.objects.filter(event_id="evt_ignored").update(received_at=last_year)
    this_year = listed(received_at__year=str(timezone.now().year))
    assert "evt_ignored" not in this_year and "evt_roles" in this_year


# -- the rollout row: starts from the settings, entries checked -----------------------------


def test_the_rollout_add_form_starts_from_the_settings(admin_client, settings):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, "ROLLOUT_PERCENTAGE": 10}
    listing = admin_client.get(url("rolloutsettings_changelist"))
    assert any("ROLLOUT_PERCENTAGE = 10%" in str(m) for m in listing.context["messages"])

    form = admin_client.get(url("rolloutsettings_add")).context["adminform"].form
    assert (form.initial["enabled"], form.initial["percentage"]) == (True, 10)
    posted = {"enabled": "on", "percentage": form.initial["percentage"], "allow_list": ""}
    response = admin_client.post(
        url("rolloutsettings_add"), {**posted, "deny_list": "@legacy.example"}
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    rollout.forget()
    state = rollout.current()
    assert state.percentage == 10 and not state.uses_scalekit("ada@legacy.example")


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("acme.example", "write '@acme.example'"),
        ("*@acme.example", "no wildcards"),
        ("ada@acme.example, bob@acme.example", "one email or @domain per line"),
        ("@acme", "not an @domain"),
        ("ada@", "not a valid email"),
    ],
)
@pytest.mark.parametrize("field", ["allow_list", "deny_list"])
def test_rollout_entries_that_would_match_no_one_are_refused(admin_client, field, entry, hint):
    row = RolloutSettingsFactory(percentage=50)
    lists = {"allow_list": "", "deny_list": "", field: f"ok@acme.example\n{entry}"}
    response = admin_client.post(
        url("rolloutsettings_change", row.pk), {"enabled": "on", "percentage": "50", **lists}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors[field]
    assert len(errors) == 1 and errors[0].startswith("Line 2 ") and hint in errors[0], errors
    row.refresh_from_db()
    assert (row.allow_list, row.deny_list) == ("", "")
