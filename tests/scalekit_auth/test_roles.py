"""Role sync refuses role settings of the wrong shape instead of reading a string one character
at a time (the system checks E017 and E018 say so before; these are the runtime guards)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from scalekit_auth.roles import sync_roles

from .conftest import add_user, login
from .factories import UserFactory

pytestmark = pytest.mark.django_db


def configure(settings, **values):
    settings.SCALEKIT_AUTH = {**settings.SCALEKIT_AUTH, **values}


@pytest.mark.parametrize("key", ["SUPERUSER_ROLES", "STAFF_ROLES"])
def test_a_bare_string_of_flag_roles_grants_nothing_and_says_so(settings, key):
    configure(settings, **{key: "admin"})
    user = UserFactory()
    with pytest.raises(ImproperlyConfigured) as refused:
        sync_roles(user, ["a"])  # "a" is a character of "admin", not a role of it
    assert str(refused.value) == (
        f"SCALEKIT_AUTH['{key}'] must be a list or tuple of names, but it is a str ('admin') "
        "(see scalekit_auth.E017)."
    )
    user.refresh_from_db()
    assert not user.is_superuser and not user.is_staff


def test_a_bare_string_of_groups_creates_no_group_per_character(settings):
    configure(settings, ROLE_GROUPS={"admin": "Admins"})
    user = UserFactory()
    with pytest.raises(ImproperlyConfigured, match=r"ROLE_GROUPS.*scalekit_auth\.E018"):
        sync_roles(user, ["admin"])
    assert not Group.objects.exists() and not user.groups.exists()


def test_a_bare_string_of_managed_groups_is_refused(settings):
    configure(settings, ROLE_GROUPS={"admin": ["Admins"]}, MANAGED_GROUPS="Admins")
    with pytest.raises(ImproperlyConfigured, match=r"MANAGED_GROUPS.*E017"):
        sync_roles(UserFactory(), ["admin"])


def test_tuples_work_like_lists(settings):
    configure(
        settings,
        ROLE_GROUPS={"admin": ("Admins",)},
        STAFF_ROLES=("admin",),
        SUPERUSER_ROLES=("owner",),
        MANAGED_GROUPS=("Admins",),
    )
    user = UserFactory()
    assert sync_roles(user, ["admin"]) is True
    assert (user.is_staff, user.is_superuser) == (True, False)
    assert list(user.groups.values_list("name", flat=True)) == ["Admins"]


def test_a_login_with_a_string_superuser_setting_makes_no_superuser(
    client, sdk, auth_emulator, settings
):
    """Stops at the callback, loudly, rather than log the user in with flags read from a string."""
    configure(settings, SUPERUSER_ROLES="admin")
    add_user(sdk, "ada@acme.example", roles=["member"])
    with pytest.raises(ImproperlyConfigured, match="SUPERUSER_ROLES"):
        login(client, auth_emulator, "ada@acme.example")
    assert not get_user_model().objects.filter(is_superuser=True).exists()
    assert "_auth_user_id" not in client.session
