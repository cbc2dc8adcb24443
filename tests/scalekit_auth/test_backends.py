"""Finding, linking and creating the Django user for verified Scalekit claims."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from scalekit_auth import backends
from scalekit_auth.backends import LinkRefused, resolve_user
from scalekit_auth.models import ScalekitIdentity

from .conftest import add_user, login

pytestmark = pytest.mark.django_db
User = get_user_model()


def claims(**extra):
    base = {
        "sub": "usr_100",
        "email": "ada@acme.example",
        "email_verified": True,
        "given_name": "Ada",
        "family_name": "Lovelace",
        "oid": "org_1",
        "roles": [],
    }
    return {**base, **extra}


def policy(settings, **values):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **values}


def test_second_login_finds_the_linked_user_even_after_an_email_change(settings):
    first = resolve_user(claims())
    again = resolve_user(claims(email="ada@new.example"))
    assert again.pk == first.pk and again.email == "ada@new.example"
    assert User.objects.count() == 1


def test_link_by_email_is_off_by_default(settings):
    existing = User.objects.create_user("ada", "ada@acme.example")
    user = resolve_user(claims())
    assert user.pk != existing.pk and user.scalekit_identity.linked_by == "created"


def test_link_by_email_needs_a_verified_email(settings):
    policy(settings, LINK_BY_EMAIL=True)
    existing = User.objects.create_user("ada", "Ada@Acme.example")
    with pytest.raises(LinkRefused, match="not verified"):
        resolve_user(claims(email_verified=False))
    user = resolve_user(claims())
    assert user.pk == existing.pk and user.scalekit_identity.linked_by == "email"


def test_ambiguous_email_is_refused(settings):
    policy(settings, LINK_BY_EMAIL=True)
    User.objects.create_user("ada1", "ada@acme.example")
    User.objects.create_user("ada2", "ada@acme.example")
    with pytest.raises(LinkRefused, match="several Django users"):
        resolve_user(claims())


def test_creation_can_be_turned_off(settings):
    policy(settings, CREATE_USERS=False)
    with pytest.raises(LinkRefused, match="CREATE_USERS is off"):
        resolve_user(claims())
    assert not User.objects.exists()


def test_external_id_that_is_not_a_primary_key_is_ignored(settings):
    user = resolve_user(claims(xuid="not-a-number"))
    assert user.scalekit_identity.linked_by == "created"


def test_external_id_field_is_configurable(settings):
    policy(settings, EXTERNAL_ID_FIELD="username")
    legacy = User.objects.create_user("legacy-ada")
    assert resolve_user(claims(xuid="legacy-ada")).pk == legacy.pk


def test_a_django_user_cannot_be_linked_twice(settings):
    legacy = User.objects.create_user("ada")
    resolve_user(claims(xuid=str(legacy.pk)))
    with pytest.raises(LinkRefused, match="already linked"):
        resolve_user(claims(sub="usr_200", xuid=str(legacy.pk)))


def test_username_clash_gets_a_suffix(settings):
    User.objects.create_user("ada@acme.example")
    user = resolve_user(claims())
    assert user.username == "ada@acme.example-2" and not user.has_usable_password()


def test_roles_map_to_groups_and_flags_and_leave_other_groups_alone(settings):
    policy(
        settings,
        ROLE_GROUPS={"admin": ["Admins", "Staff"], "member": ["Members"]},
        STAFF_ROLES=["admin"],
        SUPERUSER_ROLES=["owner"],
    )
    manual = Group.objects.create(name="Beta testers")
    user = resolve_user(claims(roles=["admin"]))
    user.groups.add(manual)
    assert sorted(user.groups.values_list("name", flat=True)) == ["Admins", "Beta testers", "Staff"]
    assert user.is_staff and not user.is_superuser

    user = resolve_user(claims(roles=["member"]))
    assert sorted(user.groups.values_list("name", flat=True)) == ["Beta testers", "Members"]
    assert not user.is_staff
    assert ScalekitIdentity.objects.get(user=user).roles == ["member"]


def test_group_permissions_apply_through_the_backend(client, sdk, auth_emulator, settings):
    from django.contrib.auth.models import Permission

    policy(settings, ROLE_GROUPS={"admin": ["Admins"]})
    admins = Group.objects.create(name="Admins")
    admins.permissions.add(Permission.objects.get(codename="view_authevent"))
    add_user(sdk, "ada@acme.example", roles=["admin"])
    login(client, auth_emulator, "ada@acme.example")
    user = User.objects.get(email="ada@acme.example")
    assert user.has_perm("scalekit_auth.view_authevent")
    assert not user.has_perm("scalekit_auth.change_authevent")


def test_two_first_logins_at_once_share_one_link(settings, monkeypatch):
    """Another request linked this Scalekit user after our lookup and before our insert (as
    parallel first API calls of a single-page app do): we use its link and leave no extra user
    behind."""
    winner = User.objects.create_user("winner")
    ScalekitIdentity.objects.create(user=winner, scalekit_user_id="usr_100")
    real = backends._identity
    lookups = []

    def lookup_before_the_other_request_committed(sub):
        lookups.append(sub)
        return None if len(lookups) == 1 else real(sub)

    monkeypatch.setattr(backends, "_identity", lookup_before_the_other_request_committed)

    user = resolve_user(claims())

    assert user == winner and len(lookups) == 2
    assert list(User.objects.values_list("username", flat=True)) == ["winner"]
    assert ScalekitIdentity.objects.get().user == winner
