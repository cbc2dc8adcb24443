"""This project's own database as a source: the user model, its groups and a tenant model.

Roles are the Django groups (``ROLE_SOURCE = "groups"``), organizations the rows of
``ORGANIZATION_MODEL``, and users the active users, each a member of the organizations reached
through ``ORGANIZATION_MEMBERS_FIELD`` with their groups as roles. Users are read in primary-key
chunks with one query for their groups and one for their organizations per chunk, so memory does
not grow with the table. The checksum is the SHA-256 of the rows as exported.

Group names become role names (``role_name_for_group``). Two groups that would become the same
role are both reported (their role rows invalid, error ``role_name_collision``), and so is every
user in one of them: importing them would merge the two groups' members into one role. The
groups' names and keys are read once (one entry per group). A null (or empty) external id is
missing, never the string "None": a user without one is matched by email; an organization
without one is invalid, and so are its members.
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

from ..conf import app_settings
from .base import KINDS, SourceError, SourceInfo, SourceRow

CHUNK = 500
_NOT_ROLE_CHARS = re.compile(r"[^A-Za-z0-9_]+")


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
    """The role a group becomes, and the other groups that would become the same one."""

    group: str
    role: str
    clashes: list[str] = field(default_factory=list)

    def collision(self) -> str:
        others = ", ".join(repr(name) for name in self.clashes)
        return (
            f"group {self.group!r} becomes role {self.role!r}, like group {others}: the groups "
            "would merge into one role; rename one of them"
        )


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
            if mapped.clashes:
                yield SourceRow(
                    number,
                    location,
                    data=data,
                    error=f"name: {mapped.collision()}",
                    error_code="role_name_collision",
                )
            else:
                yield SourceRow(number, location, data=data)

    def group_roles(self) -> dict[Any, GroupRole]:
        """Every group's role, by group primary key (read once per source)."""
        if self._group_roles is None:
            by_role: dict[str, list[tuple[Any, str]]] = defaultdict(list)
            for pk, name in Group.objects.order_by("pk").values_list("pk", "name"):
                by_role[role_name_for_group(name, pk)].append((pk, name))
            self._group_roles = {
                pk: GroupRole(name, role, [other for key, other in groups if key != pk])
                for role, groups in by_role.items()
                for pk, name in groups
            }
        return self._group_roles

    def group_role(self, pk: Any, name: str) -> GroupRole:
        """The role of one group (a group created since the groups were read clashes with
        none of them as far as this source knows)."""
        return self.group_roles().get(pk) or GroupRole(name, role_name_for_group(name, pk))

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
    def users(self) -> Iterator[SourceRow]:
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        ext_field = app_settings.USER_EXTERNAL_ID_FIELD
        default = app_settings.DEFAULT_ORGANIZATION
        queryset = user_model._default_manager.order_by("pk")
        if any(f.name == "is_active" for f in user_model._meta.get_fields()):
            queryset = queryset.filter(is_active=True)
        number = 0
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
            for user in chunk:
                number += 1
                user_roles = roles.get(user.pk, [])
                orgs = organizations.get(user.pk) or (
                    [str(default["external_id"])] if default else []
                )
                data: dict[str, Any] = {
                    "email": getattr(user, email_field, "") or "",
                    "external_id": _text(getattr(user, ext_field)),
                    "memberships": [
                        {"organization": org, "roles": [r.role for r in user_roles]}
                        for org in orgs
                        if org
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
            if mapped.clashes:
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
