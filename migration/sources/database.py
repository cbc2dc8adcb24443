"""This project's own database as a source: the user model, its groups and a tenant model.

Roles are the Django groups (``ROLE_SOURCE = "groups"``), organizations the rows of
``ORGANIZATION_MODEL``, and users the active users, each a member of the organizations reached
through ``ORGANIZATION_MEMBERS_FIELD`` with their groups as roles. Users are read in primary-key
chunks with one query for their groups and one for their organizations per chunk, so memory does
not grow with the table. The checksum is the SHA-256 of the rows as exported.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from ..conf import app_settings
from .base import KINDS, SourceError, SourceInfo, SourceRow

CHUNK = 500
_NOT_ROLE_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def role_name_for_group(name: str) -> str:
    """A Django group name as a Scalekit role name (``^[a-zA-Z0-9_]{1,64}$``)."""
    return _NOT_ROLE_CHARS.sub("_", name.strip()).strip("_").lower()[:64]


class DatabaseSource:
    format = "database"

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise SourceError(f"Unknown kind {kind!r}.")
        self.kind = kind
        self.path = "database"
        self.info = SourceInfo(kind=kind, path="database", format=self.format)
        self._sha = hashlib.sha256()

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
            data: dict[str, Any] = {
                "name": role_name_for_group(group.name),
                "display_name": group.name[:100],
                "description": f"Django group {group.name!r}",
            }
            if app_settings.ROLE_PERMISSIONS:
                data["permissions"] = sorted(
                    f"{p.content_type.app_label}:{p.codename}" for p in group.permissions.all()
                )
            yield SourceRow(number, f"auth.Group pk={group.pk}", data=data)

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
                    "external_id": str(getattr(obj, ext_field)),
                    "display_name": str(getattr(obj, name_field)),
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
                    "external_id": str(getattr(user, ext_field)),
                    "memberships": [{"organization": org, "roles": user_roles} for org in orgs],
                }
                for name in ("first_name", "last_name"):
                    value = getattr(user, name, "")
                    if value:
                        data[name] = value
                yield SourceRow(number, f"{user_model._meta.label} pk={user.pk}", data=data)

    def roles_by_user(self, user_model: Any, pks: list[Any]) -> dict[Any, list[str]]:
        result: dict[Any, list[str]] = defaultdict(list)
        if app_settings.ROLE_SOURCE != "groups" or not hasattr(user_model, "groups"):
            return result
        through = user_model.groups.through
        rows = through.objects.filter(**{f"{user_model._meta.model_name}__in": pks}).values_list(
            f"{user_model._meta.model_name}_id", "group__name"
        )
        for user_pk, group_name in rows.order_by("group__name"):
            result[user_pk].append(role_name_for_group(group_name))
        return result

    def organizations_by_user(self, pks: list[Any]) -> dict[Any, list[str]]:
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
            result[user_pk].append(str(external_id))
        return result
