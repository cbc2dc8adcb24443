"""What each Scalekit event does to the linked Django user, through signed events posted to the
endpoint; Scalekit (the emulator) is asked when the event does not say enough. Events delivered
by the emulator itself: ``test_webhooks.py``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from scalekit.v1.commons import commons_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.models import AuthEvent, ScalekitIdentity, WebhookEvent

from .conftest import add_user, login
from .test_webhooks import event, fresh_client, groups, membership_data, occurred, post_event

__all__ = ["fresh_client"]

pytestmark = pytest.mark.django_db

CREATED = "user.organization_membership_created"
UPDATED = "user.organization_membership_updated"
DELETED = "user.organization_membership_deleted"


@pytest.fixture
def roles_settings(settings, auth_emulator):
    settings.SCALEKIT_AUTH = {
        **settings.SCALEKIT_AUTH,
        "ROLE_GROUPS": {"admin": ["Admins"], "member": ["Members"]},
        "STAFF_ROLES": ["admin"],
    }
    return auth_emulator


@pytest.fixture
def admin_user(client, sdk, roles_settings):
    """Ada, an admin of acme in Scalekit, logged in once: (org, Scalekit user, Django user)."""
    org, sk_user = add_user(sdk, "ada@acme.example", roles=["admin"])
    login(client, roles_settings, "ada@acme.example")
    user = get_user_model().objects.get()
    assert groups(user) == ["Admins"] and user.is_staff
    return org, sk_user, user


def refuse_get_user(emulator, sdk, user_id: str) -> None:
    """Scalekit answers GetUser with RESOURCE_EXHAUSTED from now on (its one token spent)."""
    emulator.control.set_faults(rate_limit_rps=0.001, rate_limit_burst=1, methods=["GetUser"])
    sdk.users.get_user(user_id)


def outcome(response) -> str:
    assert response.status_code == 200, response.content
    return response.json()["detail"]


# -- membership created / updated ----------------------------------------------------------------


def test_roles_are_read_from_the_singular_membership(client, admin_user):
    """Scalekit's documented examples carry ``user.membership`` and no ``user.memberships``."""
    org, sk_user, user = admin_user
    data = {
        "organization": {"id": org.id},
        "user": {
            "id": sk_user.id,
            "membership": {"organization_id": org.id, "roles": [{"name": "member"}]},
        },
    }

    detail = outcome(post_event(client, event("evt_1", UPDATED, data, org.id)))

    user.refresh_from_db()
    assert detail == f"roles of user {user.pk} set to ['member']"
    assert groups(user) == ["Members"] and not user.is_staff


def test_an_event_without_the_membership_leaves_the_roles_alone(client, admin_user):
    org, sk_user, user = admin_user
    data = membership_data(org.id, sk_user.id, ("org_elsewhere", ["member"]))

    detail = outcome(post_event(client, event("evt_1", UPDATED, data, org.id)))

    user.refresh_from_db()
    assert groups(user) == ["Admins"] and user.is_staff and user.is_superuser is False
    assert "unchanged: the event has no membership in " + org.id in detail
    logged = AuthEvent.objects.get(kind="webhook", success=True).reason
    assert "no membership in " + org.id in logged
    assert user.scalekit_identity.roles == ["admin"]


def test_an_older_membership_event_does_not_overwrite_newer_roles(client, admin_user):
    org, sk_user, user = admin_user
    newer = membership_data(org.id, sk_user.id, (org.id, ["member"]))
    older = membership_data(org.id, sk_user.id, (org.id, ["admin"]))

    outcome(post_event(client, event("evt_2", UPDATED, newer, org.id, at=occurred(0))))
    detail = outcome(post_event(client, event("evt_1", UPDATED, older, org.id, at=occurred(-5))))

    user.refresh_from_db()
    assert groups(user) == ["Members"] and not user.is_staff
    assert "unchanged: the event is older than the last one applied (" in detail


def test_roles_given_by_id_only_are_named_by_scalekit(client, sdk, admin_user):
    org, sk_user, user = admin_user
    sdk.users.update_membership(
        org.id, sk_user.id, users_pb2.UpdateMembership(roles=[commons_pb2.Role(name="member")])
    )
    data = {
        "organization": {"id": org.id},
        "user": {
            "id": sk_user.id,
            "membership": {"organization_id": org.id, "roles": [{"id": "role_123"}]},
        },
    }

    detail = outcome(post_event(client, event("evt_1", UPDATED, data, org.id)))

    user.refresh_from_db()
    assert detail.endswith("set to ['member'] (role names read from Scalekit)")
    assert groups(user) == ["Members"]


def test_a_membership_of_another_organization_leaves_the_roles_alone(client, admin_user):
    org, sk_user, user = admin_user
    data = membership_data("org_beta", sk_user.id, ("org_beta", ["member"]))

    detail = outcome(post_event(client, event("evt_1", UPDATED, data, "org_beta")))

    user.refresh_from_db()
    assert groups(user) == ["Admins"]
    assert detail == (
        f"roles of user {user.pk} unchanged: membership of org_beta, not of {org.id} "
        "(their last login)"
    )


def test_an_event_about_an_unknown_user_changes_nothing(client, admin_user):
    org, _sk_user, user = admin_user
    data = membership_data(org.id, "usr_unknown", (org.id, ["member"]))

    assert outcome(post_event(client, event("evt_1", UPDATED, data, org.id))) == "no linked user"
    user.refresh_from_db()
    assert groups(user) == ["Admins"]


# -- membership deleted --------------------------------------------------------------------------


def test_leaving_one_organization_clears_its_roles_and_keeps_the_user_active(
    client, sdk, admin_user, roles_settings
):
    """The event lists what is left (taken after the deletion): Scalekit is not asked."""
    org, sk_user, user = admin_user
    refuse_get_user(roles_settings, sdk, sk_user.id)
    data = membership_data(org.id, sk_user.id, ("org_beta", ["member"]))

    detail = outcome(post_event(client, event("evt_1", DELETED, data, org.id)))

    user.refresh_from_db()
    assert user.is_active and groups(user) == [] and not user.is_staff
    assert detail == (
        f"roles of user {user.pk} set to [] (membership in {org.id} deleted); user {user.pk} "
        "stays active: a member of org_beta (per the event)"
    )


def test_a_deletion_listing_the_memberships_before_it_asks_scalekit(
    client, sdk, admin_user, roles_settings
):
    """The emulator's deletion events list the memberships before the deletion (the deleted
    one included): what is left is asked to Scalekit."""
    org, sk_user, user = admin_user
    beta = add_user(sdk, "bob@beta.example", org_external_id="beta")[0]
    sdk.users.create_membership(
        beta.id, sk_user.id, users_pb2.CreateMembership(), send_invitation_email=False
    )
    sdk.users.delete_membership(org.id, sk_user.id)
    data = membership_data(org.id, sk_user.id, (org.id, ["admin"]), (beta.id, ["member"]))

    detail = outcome(post_event(client, event("evt_1", DELETED, data, org.id)))

    user.refresh_from_db()
    assert user.is_active
    assert detail.endswith(f"stays active: a member of {beta.id} (per Scalekit)")


def test_the_last_membership_deleted_deactivates_the_user(client, sdk, admin_user):
    org, sk_user, user = admin_user
    sdk.users.delete_membership(org.id, sk_user.id)  # the emulator deletes the user with it
    data = membership_data(org.id, sk_user.id, (org.id, ["admin"]))

    detail = outcome(post_event(client, event("evt_9", DELETED, data, org.id)))

    user.refresh_from_db()
    assert user.is_active is False
    assert detail.endswith(f"user {user.pk} deactivated: no membership left (per Scalekit)")
    assert user.scalekit_identity.deactivated_by_event == "evt_9"


def test_scalekit_not_answering_is_a_503_and_the_redelivery_applies(
    client, sdk, admin_user, roles_settings
):
    org, sk_user, user = admin_user
    refuse_get_user(roles_settings, sdk, sk_user.id)
    sdk.users.delete_membership(org.id, sk_user.id)
    payload = event("evt_1", DELETED, membership_data(org.id, sk_user.id), org.id)

    refused = post_event(client, payload)

    assert refused.status_code == 503
    assert refused.json()["detail"] == "not applied (ScalekitUnreachable); deliver it again"
    assert not WebhookEvent.objects.exists()
    user.refresh_from_db()
    assert user.is_active and groups(user) == ["Admins"]
    reason = AuthEvent.objects.get(kind="webhook", success=False).reason
    assert reason.startswith(f"{DELETED} evt_1 not applied, Scalekit will retry: could not read")
    assert (
        f"the memberships of {sk_user.id} from Scalekit (ScalekitTooManyRequestsException, "
        in reason
    )
    assert "RESOURCE_EXHAUSTED" in reason and "\n" not in reason

    roles_settings.control.clear_faults()
    detail = outcome(post_event(client, payload))

    user.refresh_from_db()
    assert user.is_active is False and "deactivated" in detail


def test_an_older_deletion_does_not_undo_a_newer_membership(client, sdk, admin_user):
    org, sk_user, user = admin_user
    sdk.users.delete_membership(org.id, sk_user.id)
    created = membership_data(org.id, sk_user.id, (org.id, ["member"]))
    outcome(post_event(client, event("evt_2", CREATED, created, org.id, at=occurred(0))))

    deleted = membership_data(org.id, sk_user.id)
    detail = outcome(post_event(client, event("evt_1", DELETED, deleted, org.id, at=occurred(-5))))

    user.refresh_from_db()
    assert user.is_active and groups(user) == ["Members"]
    assert "roles of user" in detail and f"user {user.pk} left active: the event is older" in detail


def test_a_user_an_admin_deactivated_is_not_reactivated(client, admin_user):
    org, sk_user, user = admin_user
    user.is_active = False
    user.save()
    data = membership_data(org.id, sk_user.id, (org.id, ["member"]))

    detail = outcome(post_event(client, event("evt_1", CREATED, data, org.id)))

    user.refresh_from_db()
    assert user.is_active is False
    assert detail.startswith(f"user {user.pk} stays inactive (not deactivated by a webhook)")


def test_a_deactivation_by_an_admin_after_a_reactivation_is_not_undone(client, sdk, admin_user):
    org, sk_user, user = admin_user
    sdk.users.delete_membership(org.id, sk_user.id)
    outcome(
        post_event(client, event("evt_1", DELETED, membership_data(org.id, sk_user.id), org.id))
    )
    user.refresh_from_db()
    assert user.is_active is False and user.scalekit_identity.deactivated_by_event == "evt_1"

    user.is_active = True  # an admin reactivates them, then deactivates them again
    user.save()
    user.is_active = False
    user.save()
    data = membership_data(org.id, sk_user.id, (org.id, ["member"]))
    outcome(post_event(client, event("evt_2", CREATED, data, org.id)))

    user.refresh_from_db()
    assert user.is_active is False
    assert user.scalekit_identity.deactivated_by_event == ""


# -- user.updated / user.deleted -----------------------------------------------------------------


def user_data(sk_user_id: str, email: str, given: str, family: str) -> dict:
    return {
        "user": {
            "id": sk_user_id,
            "email": email,
            "user_profile": {"given_name": given, "family_name": family},
        }
    }


def test_user_updated_copies_the_email_and_names_unless_older(client, admin_user):
    _org, sk_user, user = admin_user
    newer = user_data(sk_user.id, "ada@new.example", "Augusta", "King")
    older = user_data(sk_user.id, "ada@old.example", "Ada", "Byron")

    detail = outcome(
        post_event(
            client, event("evt_2", "user.updated", newer, at=occurred(0), object_type="User")
        )
    )
    stale = outcome(
        post_event(
            client, event("evt_1", "user.updated", older, at=occurred(-5), object_type="User")
        )
    )

    user.refresh_from_db()
    assert (user.email, user.first_name, user.last_name) == ("ada@new.example", "Augusta", "King")
    assert detail == f"user {user.pk} updated: email, first_name, last_name"
    assert stale.startswith(f"user {user.pk} unchanged: the event is older than the last")


def test_user_deleted_deactivates_the_user(client, admin_user):
    _org, sk_user, user = admin_user

    detail = outcome(
        post_event(client, event("evt_5", "user.deleted", {"id": sk_user.id}, object_type="User"))
    )

    user.refresh_from_db()
    assert user.is_active is False
    assert (
        detail == f"user {user.pk} deactivated: no membership left (the Scalekit user was deleted)"
    )
    assert user.scalekit_identity.deactivated_by_event == "evt_5"


# -- SCIM directory users ------------------------------------------------------------------------


def directory_user(org_id: str, email: str, **extra) -> dict:
    """A directory user as Scalekit's documented examples show it: its own ``diruser_`` id, the
    IdP's ``dp_id``, top-level names, no Scalekit user id."""
    return {
        "id": "diruser_53891546960887884",
        "organization_id": org_id,
        "dp_id": "00u1abcd",
        "email": email,
        "active": True,
        "given_name": "Augusta",
        "family_name": "King",
        "roles": [{"role_name": "billing_admin"}],
        "groups": [{"id": "dirgroup_1", "name": "Finance"}],
        **extra,
    }


def directory_event(event_id: str, kind: str, data: dict) -> dict:
    return event(
        event_id,
        f"organization.directory.user_{kind}",
        data,
        data["organization_id"],
        object_type="DirectoryUser",
    )


def test_a_directory_user_is_matched_by_email_and_its_names_copied(client, admin_user):
    org, _sk_user, user = admin_user
    data = directory_user(org.id, "ADA@acme.example")

    detail = outcome(post_event(client, directory_event("evt_1", "updated", data)))

    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Augusta", "King")
    assert detail == f"user {user.pk} updated: first_name, last_name"


def test_a_directory_user_marked_inactive_is_reported_not_applied(client, admin_user):
    org, _sk_user, user = admin_user
    data = directory_user(org.id, "ada@acme.example", active=False)

    detail = outcome(post_event(client, directory_event("evt_1", "updated", data)))

    user.refresh_from_db()
    assert user.is_active
    assert "the directory marks them inactive" in detail


@pytest.mark.parametrize("case", ["other organization", "no such email", "two users"])
def test_a_directory_user_that_is_not_exactly_one_linked_user_changes_nothing(
    client, admin_user, case
):
    org, _sk_user, user = admin_user
    email, org_id = "ada@acme.example", org.id
    if case == "other organization":
        org_id = "org_beta"
        expected = f"last logged in through {org.id}, not org_beta: unchanged"
    elif case == "no such email":
        email = "eve@acme.example"
        expected = "no linked user with the email of diruser_53891546960887884"
    else:
        twin = get_user_model().objects.create(username="ada2", email="Ada@acme.example")
        ScalekitIdentity.objects.create(
            user=twin, scalekit_user_id="usr_twin", organization_id=org.id, linked_by="email"
        )
        expected = "several linked users have the email of diruser_53891546960887884"

    detail = outcome(
        post_event(client, directory_event("evt_1", "updated", directory_user(org_id, email)))
    )

    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert expected in detail


def test_a_directory_user_deleted_deactivates_only_without_a_membership_left(
    client, sdk, admin_user
):
    org, sk_user, user = admin_user
    data = directory_user(org.id, "ada@acme.example")

    kept = outcome(post_event(client, directory_event("evt_1", "deleted", data)))
    user.refresh_from_db()
    assert (
        user.is_active
        and kept == f"user {user.pk} stays active: a member of {org.id} (per Scalekit)"
    )

    sdk.users.delete_membership(org.id, sk_user.id)
    gone = outcome(post_event(client, directory_event("evt_2", "deleted", data)))
    user.refresh_from_db()
    assert user.is_active is False
    assert gone == f"user {user.pk} deactivated: no membership left (per Scalekit)"


def test_a_directory_event_without_an_email_is_refused(client, admin_user):
    org, _sk_user, _user = admin_user
    data = directory_user(org.id, "")

    response = post_event(client, directory_event("evt_1", "deleted", data))

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "organization.directory.user_deleted has no data.email to find the user by"
    )


def test_a_membership_event_older_than_the_login_does_not_overwrite_its_roles(client, admin_user):
    """The login's token states the roles as of its issue; an earlier event arriving late is
    stale, a later one applies."""
    org, sk_user, user = admin_user
    identity = user.scalekit_identity
    assert identity.roles_event_at is not None
    before_login = membership_data(org.id, sk_user.id, (org.id, ["member"]))

    detail = outcome(
        post_event(client, event("evt_1", UPDATED, before_login, org.id, at=occurred(-30)))
    )
    user.refresh_from_db()
    assert "unchanged: the event is older than the last one applied (" in detail
    assert groups(user) == ["Admins"] and user.is_staff

    outcome(post_event(client, event("evt_2", UPDATED, before_login, org.id, at=occurred(1))))
    user.refresh_from_db()
    assert groups(user) == ["Members"] and not user.is_staff
