"""Scalekit roles to Django groups and the staff/superuser flags, applied at every login."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group

from .conf import app_settings


def managed_groups() -> set[str]:
    managed = app_settings.MANAGED_GROUPS
    if managed is not None:
        return set(managed)
    return {name for names in app_settings.ROLE_GROUPS.values() for name in names}


def groups_for(roles: Iterable[str]) -> set[str]:
    mapping = app_settings.ROLE_GROUPS
    return {name for role in roles for name in mapping.get(role, ())}


def sync_roles(user: Any, roles: Iterable[str]) -> bool:
    """Make ``user``'s managed groups and flags match ``roles``; True if anything changed.

    Groups outside the managed set (given by hand, or by the legacy app) are left alone.
    """
    roles = set(roles)
    wanted = groups_for(roles)
    managed = managed_groups() | wanted
    current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
    changed = False
    if wanted - current:
        existing = {g.name: g for g in Group.objects.filter(name__in=wanted - current)}
        missing = [Group(name=n) for n in wanted - current if n not in existing]
        created = Group.objects.bulk_create(missing) if missing else []
        if any(g.pk is None for g in created):  # backends that do not return primary keys
            created = list(Group.objects.filter(name__in=[g.name for g in created]))
        user.groups.add(*existing.values(), *created)
        changed = True
    if current - wanted:
        user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        changed = True
    for flag, flag_roles in (
        ("is_staff", app_settings.STAFF_ROLES),
        ("is_superuser", app_settings.SUPERUSER_ROLES),
    ):
        if flag_roles:
            value = not roles.isdisjoint(flag_roles)
            if getattr(user, flag) != value:
                setattr(user, flag, value)
                changed = True
    return changed
