"""This project's own database as a source: the user model, its groups and a tenant model.

Roles are the Django groups (``ROLE_SOURCE = "groups"``), organizations the rows of
``ORGANIZATION_MODEL``, and users the active users, each a member of the organizations reached
through ``ORGANIZATION_MEMBERS_FIELD`` with their groups as roles. Users are read in primary-key
chunks with one query for their groups and one for their organizations per chunk, so memory does
not grow with the table. The checksum is the SHA-256 of the rows as exported.

Group names become role names (``role_name_for_group``). Two groups that would become the same
role are both reported (their role rows invalid, error ``role_name_collision``), and so is every
user in one of them: importing them would merge the two groups' members into one role. So is a
group that would become a role this source gives for another reason: a flag role (below) or
``MIGRATION['DEFAULT_ROLE']`` (what a user in no group gets: at login they would join the
group). The groups' names and keys are read once (one entry per group). A null (or empty)
external id is missing, never the string "None": a user without one is matched by email; an
organization without one is invalid, and so are its members.

Django's ``is_staff`` and ``is_superuser`` flags travel as roles too (``FLAG_ROLES``:
``django_staff``, ``django_superuser``), defined when an active user has the flag and given to
those users, so that ``scalekit_auth`` can set the flags again at login. ``role_settings()`` is
the ``SCALEKIT_AUTH`` mapping that does so (every group from its role, the flags from theirs);
``first_login_changes()`` says which users the configured mapping would change instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from scalekit_auth.roles import FLAG_SETTINGS, planned_change

from ..conf import app_settings
from .base import KINDS, SourceError, SourceInfo, SourceRow

CHUNK = 500
_NOT_ROLE_CHARS = re.compile(r"[^A-Za-z0-9_]+")

#: The role that carries each of Django's user flags into Scalekit: given to the users who have
#: the flag, and named in ``SCALEKIT_AUTH['STAFF_ROLES']`` / ``['SUPERUSER_ROLES']``.
FLAG_ROLES = {"is_staff": "django_staff", "is_superuser": "django_superuser"}


def role_name_for_group(name: str, pk: Any) -> str:
    """A Django group name as a Scalekit role name (``^[a-zA-Z0-9_]{1,64}$``), lower-cased.

    Accents are dropped ("Équipe Café" gives ``equipe_cafe``). A name with letters or digits
    that have no ASCII form (Cyrillic, Greek, CJK...), or with none at all, becomes
    ``group_<pk>``: dropping them would leave a misleading or empty name. The role's display
    name keeps the group name as it is.
    """
    folded = "".join(
        char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char)
    )
    slug = ""
    if not any(char.isalnum() and not char.isascii() for char in folded):
        slug = _NOT_ROLE_CHARS.sub("_", folded).strip("_").lower()[:64].rstrip("_")
    return slug or _NOT_ROLE_CHARS.sub("_", f"group_{pk}")[:64]


@dataclass
class GroupRole:
    """The role a group becomes, the other groups that would become the same one, and what
    else this source gives that role to (``reserved``: a flag's role or the DEFAULT_ROLE)."""

    group: str
    role: str
    clashes: list[str] = field(default_factory=list)
    reserved: str = ""

    @property
    def collides(self) -> bool:
        return bool(self.clashes or self.reserved)

    def collision(self) -> str:
        if self.clashes:
            others = ", ".join(repr(name) for name in self.clashes)
            return (
                f"group {self.group!r} becomes role {self.role!r}, like group {others}: the "
                "groups would merge into one role; rename one of them"
            )
        return f"group {self.group!r} becomes role {self.role!r}, {self.reserved}"


def reserved_roles() -> dict[str, str]:
    """The role names this source gives for something else than a group, and why no group may
    become one of them."""
    reserved = {
        role: f"the role this import gives the users who have {flag}: rename the group"
        for flag, role in FLAG_ROLES.items()
    }
    default_role = app_settings.DEFAULT_ROLE
    if isinstance(default_role, str) and default_role:
        reserved[default_role] = (
            "which is MIGRATION['DEFAULT_ROLE'], given to the users in no group: at their "
            "login they would join the group too; rename the group, or set DEFAULT_ROLE to a "
            "role no group becomes"
        )
    return reserved


def active_users(user_model: Any) -> Any:
    """The users this source exports: the active ones, by primary key."""
    queryset = user_model._default_manager.order_by("pk")
    if any(f.name == "is_active" for f in user_model._meta.get_fields()):
        queryset = queryset.filter(is_active=True)
    return queryset


def user_flags(user_model: Any) -> list[str]:
    """The flags of ``FLAG_ROLES`` the user model has (a custom user may have neither)."""
    names = {f.name for f in user_model._meta.get_fields()}
    return [flag for flag in FLAG_ROLES if flag in names]


def _text(value: Any) -> str:
    """A field value as text; None (a null column) is missing, never "None"."""
    return "" if value is None else str(value)


class DatabaseSource:
    format = "database"

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise SourceError(f"Unknown kind {kind!r}.")
        self.kind = kind
        self.path = "database"
        self.info = SourceInfo(kind=kind, path="database", format=self.format)
        self._sha = hashlib.sha256()
        self._group_roles: dict[Any, GroupRole] | None = None

    def rows(self) -> Iterator[SourceRow]:
        produce = {"role": self.roles, "organization": self.organizations, "user": self.users}
        for row in produce[self.kind]():
            self._sha.update(json.dumps(row.data, sort_keys=True, default=str).encode())
            self.info.rows += 1
            yield row
        self.info.checksum = self._sha.hexdigest()

    # roles -------------------------------------------------------------------------------
    def roles(self) -> Iterator[SourceRow]:
        if app_settings.ROLE_SOURCE != "groups":
            return
        groups = Group.objects.order_by("pk")
        if app_settings.ROLE_PERMISSIONS:
            groups = groups.prefetch_related("permissions__content_type")
        for number, group in enumerate(groups.iterator(chunk_size=CHUNK), start=1):
            mapped = self.group_role(group.pk, group.name)
            data: dict[str, Any] = {
                "name": mapped.role,
                "display_name": group.name[:100],
                "description": f"Django group {group.name!r}",
            }
            if app_settings.ROLE_PERMISSIONS:
                data["permissions"] = sorted(
                    f"{p.content_type.app_label}:{p.codename}" for p in group.permissions.all()
                )
            location = f"auth.Group pk={group.pk}"
            if mapped.collides:
                yield SourceRow(
                    number,
                    location,
                    data=data,
                    error=f"name: {mapped.collision()}",
                    error_code="role_name_collision",
                )
            else:
                yield SourceRow(number, location, data=data)
        user_model = get_user_model()
        for flag in self.flags_in_use():
            number += 1
            role = FLAG_ROLES[flag]
            data = {
                "name": role,
                "display_name": f"Django {flag.removeprefix('is_')} ({flag})",
                "description": (
                    f"The users who had {flag} in Django; SCALEKIT_AUTH['{FLAG_SETTINGS[flag]}'] "
                    f"= ['{role}'] sets the flag again at login"
                ),
            }
            if app_settings.ROLE_PERMISSIONS:
                data["permissions"] = []
            yield SourceRow(number, f"{user_model._meta.label}.{flag}", data=data)

    def flags_in_use(self) -> list[str]:
        """The flags some exported (active) user has: each becomes its role."""
        if app_settings.ROLE_SOURCE != "groups":
            return []
        user_model = get_user_model()
        users = active_users(user_model)
        return [flag for flag in user_flags(user_model) if users.filter(**{flag: True}).exists()]

    def group_roles(self) -> dict[Any, GroupRole]:
        """Every group's role, by group primary key (read once per source)."""
        if self._group_roles is None:
            by_role: dict[str, list[tuple[Any, str]]] = defaultdict(list)
            for pk, name in Group.objects.order_by("pk").values_list("pk", "name"):
                by_role[role_name_for_group(name, pk)].append((pk, name))
            reserved = reserved_roles()
            self._group_roles = {
                pk: GroupRole(
                    name,
                    role,
                    [other for key, other in groups if key != pk],
                    reserved.get(role, ""),
                )
                for role, groups in by_role.items()
                for pk, name in groups
            }
        return self._group_roles

    def group_role(self, pk: Any, name: str) -> GroupRole:
        """The role of one group (a group created since the groups were read clashes with
        none of them as far as this source knows)."""
        if pk in self.group_roles():
            return self.group_roles()[pk]
        role = role_name_for_group(name, pk)
        return GroupRole(name, role, reserved=reserved_roles().get(role, ""))

    # organizations -----------------------------------------------------------------------
    def organization_model(self) -> Any:
        label = app_settings.ORGANIZATION_MODEL
        if not label:
            return None
        try:
            return apps.get_model(label)
        except (LookupError, ValueError) as exc:
            raise SourceError(f"MIGRATION['ORGANIZATION_MODEL'] = {label!r}: {exc}") from exc

    def organizations(self) -> Iterator[SourceRow]:
        number = 0
        default = app_settings.DEFAULT_ORGANIZATION
        if default:
            number += 1
            yield SourceRow(
                number,
                "MIGRATION['DEFAULT_ORGANIZATION']",
                data={
                    "external_id": str(default["external_id"]),
                    "display_name": str(default.get("display_name") or default["external_id"]),
                },
            )
        model = self.organization_model()
        if model is None:
            return
        ext_field = app_settings.ORGANIZATION_EXTERNAL_ID_FIELD
        name_field = app_settings.ORGANIZATION_NAME_FIELD
        for obj in model._default_manager.order_by("pk").iterator(chunk_size=CHUNK):
            number += 1
            yield SourceRow(
                number,
                f"{model._meta.label} pk={obj.pk}",
                data={
                    "external_id": _text(getattr(obj, ext_field)),
                    "display_name": _text(getattr(obj, name_field)),
                },
            )

    # users -------------------------------------------------------------------------------
    def user_chunks(self) -> Iterator[list[tuple[Any, list[GroupRole], list[str], list[str]]]]:
        """The active users, ``CHUNK`` at a time, each as (user, its groups' roles, the external
        ids of its organizations, the roles of its flags)."""
        user_model = get_user_model()
        queryset = active_users(user_model)
        flags = user_flags(user_model) if app_settings.ROLE_SOURCE == "groups" else []
        last_pk: Any = None
        while True:
            chunk_qs = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
            chunk = list(chunk_qs[:CHUNK])
            if not chunk:
                return
            last_pk = chunk[-1].pk
            pks = [user.pk for user in chunk]
            roles = self.roles_by_user(user_model, pks)
            organizations = self.organizations_by_user(pks)
            yield [
                (
                    user,
                    roles.get(user.pk, []),
                    organizations.get(user.pk, []),
                    [FLAG_ROLES[flag] for flag in flags if getattr(user, flag)],
                )
                for user in chunk
            ]

    def users(self) -> Iterator[SourceRow]:
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        ext_field = app_settings.USER_EXTERNAL_ID_FIELD
        default = app_settings.DEFAULT_ORGANIZATION
        number = 0
        for chunk in self.user_chunks():
            for user, user_roles, user_orgs, flag_roles in chunk:
                number += 1
                orgs = user_orgs or ([str(default["external_id"])] if default else [])
                role_names = [r.role for r in user_roles] + flag_roles
                data: dict[str, Any] = {
                    "email": getattr(user, email_field, "") or "",
                    "external_id": _text(getattr(user, ext_field)),
                    "memberships": [
                        {"organization": org, "roles": list(role_names)} for org in orgs if org
                    ],
                }
                for name in ("first_name", "last_name"):
                    value = getattr(user, name, "")
                    if value:
                        data[name] = value
                location = f"{user_model._meta.label} pk={user.pk}"
                error = self.membership_error(user_roles, orgs)
                if error:
                    yield SourceRow(
                        number, location, data=data, error=error[0], error_code=error[1]
                    )
                else:
                    yield SourceRow(number, location, data=data)

    def membership_error(self, roles: list[GroupRole], orgs: list[str]) -> tuple[str, str] | None:
        """Why a user's memberships cannot be exported as they are, with its error code."""
        for mapped in roles:
            if mapped.collides:
                return f"memberships: {mapped.collision()}", "role_name_collision"
        if "" in orgs:
            model = app_settings.ORGANIZATION_MODEL
            field_name = app_settings.ORGANIZATION_EXTERNAL_ID_FIELD
            return (
                f"memberships: an organization ({model}) of the user has no {field_name} "
                "(null or empty), so it cannot be imported; set it, or choose another "
                "ORGANIZATION_EXTERNAL_ID_FIELD",
                "missing_organization_id",
            )
        return None

    def roles_by_user(self, user_model: Any, pks: list[Any]) -> dict[Any, list[GroupRole]]:
        result: dict[Any, list[GroupRole]] = defaultdict(list)
        if app_settings.ROLE_SOURCE != "groups" or not hasattr(user_model, "groups"):
            return result
        through = user_model.groups.through
        rows = through.objects.filter(**{f"{user_model._meta.model_name}__in": pks}).values_list(
            f"{user_model._meta.model_name}_id", "group_id", "group__name"
        )
        for user_pk, group_pk, group_name in rows.order_by("group__name"):
            result[user_pk].append(self.group_role(group_pk, group_name))
        return result

    def organizations_by_user(self, pks: list[Any]) -> dict[Any, list[str]]:
        """The external ids of each user's organizations; "" for one that has none."""
        result: dict[Any, list[str]] = defaultdict(list)
        model = self.organization_model()
        if model is None:
            return result
        members = app_settings.ORGANIZATION_MEMBERS_FIELD
        ext_field = app_settings.ORGANIZATION_EXTERNAL_ID_FIELD
        rows = (
            model._default_manager.filter(**{f"{members}__in": pks})
            .values_list(members, ext_field)
            .order_by("pk")
        )
        for user_pk, external_id in rows:
            result[user_pk].append(_text(external_id))
        return result

    def groups_by_user(self, user_model: Any, pks: list[Any]) -> dict[Any, set[str]]:
        """Every group name of each user, whatever ``ROLE_SOURCE`` says."""
        result: dict[Any, set[str]] = defaultdict(set)
        if not hasattr(user_model, "groups"):
            return result
        name = user_model._meta.model_name
        through = user_model.groups.through
        rows = through.objects.filter(**{f"{name}__in": pks}).values_list(
            f"{name}_id", "group__name"
        )
        for user_pk, group_name in rows:
            result[user_pk].add(group_name)
        return result


def _literal(value: Any) -> str:
    """``value`` (strings, lists and dicts of them) as Python source, double-quoted."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class RoleSettings:
    """The ``SCALEKIT_AUTH`` role settings under which the first login through Scalekit gives
    every user ``--from-database`` imports the groups and flags they have now: each group from
    its role, ``is_staff``/``is_superuser`` from their ``FLAG_ROLES`` (empty when no exported user
    has the flag: an empty list leaves the flag alone). Groups whose role collides are left out:
    their users are not imported."""

    role_groups: dict[str, list[str]]
    staff_roles: list[str]
    superuser_roles: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ROLE_GROUPS": self.role_groups,
            "STAFF_ROLES": self.staff_roles,
            "SUPERUSER_ROLES": self.superuser_roles,
        }

    def snippet(self, indent: str = "    ") -> str:
        """The three keys as lines to paste into ``SCALEKIT_AUTH = {...}``."""
        lines = []
        if self.role_groups:
            lines.append(f'{indent}"ROLE_GROUPS": {{')
            lines.extend(
                f"{indent}    {_literal(role)}: {_literal(groups)},"
                for role, groups in self.role_groups.items()
            )
            lines.append(f"{indent}}},")
        else:
            lines.append(f'{indent}"ROLE_GROUPS": {{}},')
        lines.append(f'{indent}"STAFF_ROLES": {_literal(self.staff_roles)},')
        lines.append(f'{indent}"SUPERUSER_ROLES": {_literal(self.superuser_roles)},')
        return "\n".join(lines)


def role_settings() -> RoleSettings:
    """The ``SCALEKIT_AUTH`` role settings that keep every imported user's groups and flags,
    read from the database as ``--from-database`` exports it (see ``RoleSettings``)."""
    if app_settings.ROLE_SOURCE != "groups":
        return RoleSettings({}, [], [])
    source = DatabaseSource("role")
    mapped = sorted(
        (m for m in source.group_roles().values() if not m.collides), key=lambda m: m.role
    )
    flags = source.flags_in_use()
    return RoleSettings(
        {m.role: [m.group] for m in mapped},
        [FLAG_ROLES["is_staff"]] if "is_staff" in flags else [],
        [FLAG_ROLES["is_superuser"]] if "is_superuser" in flags else [],
    )


@dataclass
class LoginChange:
    """What the first login through Scalekit would change for one user."""

    user: str
    lost_groups: list[str] = field(default_factory=list)
    gained_groups: list[str] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"loses group {name!r}" for name in self.lost_groups]
        parts += [f"joins group {name!r}" for name in self.gained_groups]
        parts += [f"{'gets' if value else 'loses'} {flag}" for flag, value in self.flags.items()]
        return f"{self.user}: {', '.join(parts)}"


@dataclass
class LoginChanges:
    """The imported users whose groups or flags the configured role settings would change."""

    users: int = 0
    examples: list[LoginChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"users": self.users, "examples": [c.describe() for c in self.examples]}


def first_login_changes(limit: int = 5) -> LoginChanges:
    """Which users ``--from-database`` imports would see their groups or staff/superuser flags
    changed by their first login through Scalekit under the ``SCALEKIT_AUTH`` role settings as
    they are configured now, with up to ``limit`` examples.

    The roles are those the import gives (the groups', the flags', else ``DEFAULT_ROLE``); the
    change is what ``sync_roles`` makes of them (``scalekit_auth.roles.planned_change``):
    managed groups the roles do not give are removed, the groups they give are added, and each
    flag follows its roles when any are configured. Raises ``ImproperlyConfigured`` for role
    settings of the wrong shape.
    """
    default_role = app_settings.DEFAULT_ROLE
    default = app_settings.DEFAULT_ORGANIZATION
    user_model = get_user_model()
    source = DatabaseSource("user")
    changes = LoginChanges()
    for chunk in source.user_chunks():
        groups = source.groups_by_user(user_model, [user.pk for user, *_ in chunk])
        for user, user_roles, orgs, flags in chunk:
            orgs = orgs or ([str(default["external_id"])] if default else [])
            if not orgs or source.membership_error(user_roles, orgs):
                continue  # not imported: it never logs in with the roles of this import
            roles = {r.role for r in user_roles} | set(flags)
            if not roles and default_role:
                roles = {default_role}
            current = {flag: getattr(user, flag) for flag in FLAG_SETTINGS if hasattr(user, flag)}
            planned = planned_change(groups.get(user.pk, set()), roles, current)
            if planned:
                changes.users += 1
                if len(changes.examples) < limit:
                    changes.examples.append(
                        LoginChange(
                            user.get_username(),
                            sorted(planned.remove),
                            sorted(planned.add),
                            planned.flags,
                        )
                    )
    return changes
