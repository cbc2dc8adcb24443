"""Scalekit roles to Django groups and the staff/superuser flags, applied at every login.

The role settings are read through ``role_names`` and ``role_groups``, which raise
``ImproperlyConfigured`` on a value of the wrong shape (system checks E017 and E018 report it
earlier): ``SUPERUSER_ROLES = "admin"`` must not make the role ``a`` a superuser.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from .conf import app_settings, names_problem, role_groups_problem


def role_names(key: str) -> list[str]:
    """The names in ``SCALEKIT_AUTH[key]`` (STAFF_ROLES, SUPERUSER_ROLES, MANAGED_GROUPS)."""
    value = getattr(app_settings, key)
    problem = names_problem(value)
    if problem:
        raise ImproperlyConfigured(
            f"SCALEKIT_AUTH['{key}'] must be a list or tuple of names, but {problem} "
            "(see scalekit_auth.E017)."
        )
    return list(value)


def role_groups() -> dict[str, list[str]]:
    """``SCALEKIT_AUTH['ROLE_GROUPS']``: role name -> group names."""
    value = app_settings.ROLE_GROUPS
    problem = role_groups_problem(value)
    if problem:
        raise ImproperlyConfigured(
            "SCALEKIT_AUTH['ROLE_GROUPS'] must map role names to lists of group names, but "
            f"{problem} (see scalekit_auth.E018)."
        )
    return {role: list(groups) for role, groups in value.items()}


def managed_groups() -> set[str]:
    if app_settings.MANAGED_GROUPS is not None:
        return set(role_names("MANAGED_GROUPS"))
    return {name for names in role_groups().values() for name in names}


def groups_for(roles: Iterable[str]) -> set[str]:
    mapping = role_groups()
    return {name for role in roles for name in mapping.get(role, ())}


#: The ``SCALEKIT_AUTH`` key naming the roles that give each of Django's user flags.
FLAG_SETTINGS = {"is_staff": "STAFF_ROLES", "is_superuser": "SUPERUSER_ROLES"}


@dataclass(frozen=True)
class RoleChange:
    """What ``sync_roles`` does to one user: groups to add and remove, flags to set."""

    add: frozenset[str]
    remove: frozenset[str]
    flags: dict[str, bool]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.flags)


def planned_change(groups: set[str], roles: Iterable[str], flags: dict[str, bool]) -> RoleChange:
    """The change ``roles`` make to a user in ``groups`` (any of theirs: only the managed ones
    and those the roles give count) whose flags are ``flags`` (``is_staff``, ``is_superuser``:
    the ones the user model has). A flag follows its roles only when some are configured."""
    roles = set(roles)
    wanted = groups_for(roles)
    current = groups & (managed_groups() | wanted)
    changed_flags = {}
    for flag, key in FLAG_SETTINGS.items():
        configured = role_names(key)
        if configured and flag in flags:
            value = not roles.isdisjoint(configured)
            if flags[flag] != value:
                changed_flags[flag] = value
    return RoleChange(frozenset(wanted - current), frozenset(current - wanted), changed_flags)


def sync_roles(user: Any, roles: Iterable[str]) -> bool:
    """Make ``user``'s managed groups and flags match ``roles``; True if anything changed.

    Groups outside the managed set (given by hand, or by the legacy app) are left alone.
    """
    roles = set(roles)
    relevant = managed_groups() | groups_for(roles)
    groups = set(user.groups.filter(name__in=relevant).values_list("name", flat=True))
    flags = {flag: getattr(user, flag) for flag in FLAG_SETTINGS if hasattr(user, flag)}
    change = planned_change(groups, roles, flags)
    if change.add:
        existing = {g.name: g for g in Group.objects.filter(name__in=change.add)}
        missing = [Group(name=n) for n in change.add if n not in existing]
        created = Group.objects.bulk_create(missing) if missing else []
        if any(g.pk is None for g in created):  # backends that do not return primary keys
            created = list(Group.objects.filter(name__in=[g.name for g in created]))
        user.groups.add(*existing.values(), *created)
    if change.remove:
        user.groups.remove(*Group.objects.filter(name__in=change.remove))
    for flag, value in change.flags.items():
        setattr(user, flag, value)
    return bool(change)
