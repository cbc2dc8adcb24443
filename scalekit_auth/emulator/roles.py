"""The directory's roles and permissions: roles with their permissions and the roles they
extend, the default creator and member roles, and permissions listed by keyset pages.

A mixin of :class:`~scalekit_auth.emulator.directory.Directory`: it shares the directory's lock,
indexes (set up in ``Directory._clear_state``), persistence and events, because memberships hold
roles by name (a role still assigned cannot be deleted; reassigning rewrites memberships).
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from scalekit.v1.roles import roles_pb2

from . import ids
from .errors import EmulatorError, FieldViolation, invalid_argument, not_found
from .records import (
    Page,
    Pending,
    copy_message,
    insert_sorted,
    page_ids,
    remove_sorted,
    timestamp_now,
)

ROLE_KIND = "directory.role"
PERMISSION_KIND = "directory.permission"

ROLE_STILL_ASSIGNED = "role cannot be deleted as it is assigned to users"

SEED_ROLES = (
    ("admin", "Admin", "Can manage the organization, its members and their roles.", True, False),
    ("member", "Member", "A member of the organization.", False, True),
)


class RolesAndPermissions:
    """Roles and permissions of :class:`~scalekit_auth.emulator.directory.Directory`."""

    def _seed_roles(self) -> None:
        for name, display_name, description, creator, member in SEED_ROLES:
            role = roles_pb2.Role(
                id=ids.new_id("role"),
                name=name,
                display_name=display_name,
                description=description,
                default_creator=creator,
                default_member=member,
            )
            self._roles[name] = role
            self._role_by_id[role.id] = name
            self._role_permissions[name] = {}
            self._save_role(role)

    def _index_permission(self, permission: roles_pb2.Permission) -> None:
        self._permissions[permission.name] = permission
        insert_sorted(self._permission_ids, permission.id)
        self._permission_by_id[permission.id] = permission.name

    def _save_role(self, role: roles_pb2.Role) -> None:
        if self._persistence is not None:
            stored = copy_message(role)
            for name in self._role_permissions.get(role.name, {}):
                stored.permissions.add(name=name, role_name=role.name)
            self._persistence.save(ROLE_KIND, role.name, stored.SerializeToString())

    def _save_permission(self, permission: roles_pb2.Permission) -> None:
        if self._persistence is not None:
            self._persistence.save(PERMISSION_KIND, permission.name, permission.SerializeToString())

    # -- roles ------------------------------------------------------------------------------------

    def _role(self, name: str) -> roles_pb2.Role:
        role = self._roles.get(name)
        if role is None:
            raise not_found(f'role "{name}" not found')
        return role

    def _ancestry(self, name: str) -> list[str]:
        """``name`` and the roles it extends, nearest first (cycle-safe)."""
        chain: list[str] = []
        current: str | None = name
        while current and current not in chain and current in self._roles:
            chain.append(current)
            role = self._roles[current]
            current = role.extends if role.HasField("extends") else None
        return chain

    def _permissions_for(self, role_names: Iterable[str]) -> list[str]:
        seen: dict[str, None] = {}
        for name in role_names:
            for ancestor in self._ancestry(name):
                for permission in self._role_permissions.get(ancestor, {}):
                    seen[permission] = None
        return list(seen)

    def permissions_for_roles(self, role_names: Iterable[str]) -> list[str]:
        """The permission names granted by these roles, including those of the roles they
        extend, each once, in role order. Unknown role names grant nothing."""
        with self._lock:
            return self._permissions_for(role_names)

    def _role_permission_entries(self, name: str, include: str) -> list[roles_pb2.RolePermission]:
        sources = [name] if include == "permissions" else self._ancestry(name)
        entries = []
        seen: set[str] = set()
        for source in sources:
            for permission_name in self._role_permissions.get(source, {}):
                if permission_name in seen:
                    continue
                seen.add(permission_name)
                permission = self._permissions.get(permission_name)
                entry = roles_pb2.RolePermission(name=permission_name, role_name=source)
                if permission is not None:
                    entry.id = permission.id
                    entry.description = permission.description
                    entry.create_time.CopyFrom(permission.create_time)
                    entry.update_time.CopyFrom(permission.update_time)
                entries.append(entry)
        return entries

    def _export_role(self, role: roles_pb2.Role, include: str = "") -> roles_pb2.Role:
        """A copy as served: ``permissions`` only when asked (``permissions`` for the role's own,
        ``permissions:all`` with inherited ones), per the ``include`` field's description."""
        out = copy_message(role)
        out.dependent_roles_count = sum(
            1
            for other in self._roles.values()
            if other.HasField("extends") and other.extends == role.name
        )
        if include:
            out.permissions.extend(self._role_permission_entries(role.name, include))
        return out

    def _require_permissions(self, names: Iterable[str]) -> list[str]:
        missing = [name for name in names if name not in self._permissions]
        if missing:
            raise not_found(
                "permission(s) not found: "
                + ", ".join(f'"{name}"' for name in missing)
                + "; create them before assigning them to a role"
            )
        return list(dict.fromkeys(names))

    def create_role(self, spec: roles_pb2.CreateRole) -> roles_pb2.Role:
        """Duplicate names are INVALID_ARGUMENT "duplicate key not allowed" [tests]. [unknown] an
        unknown ``extends`` role or permission is NOT_FOUND."""
        pending: list[Pending] = []
        with self._lock:
            if spec.name in self._roles:
                raise invalid_argument(
                    f'duplicate key not allowed: role "{spec.name}" already exists'
                )
            if spec.HasField("extends") and spec.extends:
                self._role(spec.extends)
            permissions = self._require_permissions(spec.permissions)
            role = roles_pb2.Role(
                id=ids.new_id("role"), name=spec.name, display_name=spec.display_name
            )
            if spec.HasField("description"):
                role.description = spec.description
            if spec.HasField("extends") and spec.extends:
                role.extends = spec.extends
            self._roles[role.name] = role
            self._role_by_id[role.id] = role.name
            self._role_permissions[role.name] = dict.fromkeys(permissions)
            self._save_role(role)
            result = self._export_role(role, "permissions")
            if self._subscribers:
                pending.append(("role.created", "Role", "", result))
        self._emit(pending)
        return result

    def get_role(self, name: str, include: str = "") -> roles_pb2.Role:
        with self._lock:
            return self._export_role(self._role(name), include)

    def list_roles(self, include: str = "") -> list[roles_pb2.Role]:
        with self._lock:
            return [self._export_role(role, include) for role in self._roles.values()]

    def update_role(self, name: str, spec: roles_pb2.UpdateRole) -> roles_pb2.Role:
        """Present fields are set; non-empty ``permissions`` replace the role's permissions (per
        the field's description). Extending a role that (indirectly) extends this one is
        INVALID_ARGUMENT."""
        pending: list[Pending] = []
        with self._lock:
            role = self._role(name)
            if spec.HasField("extends"):
                parent = spec.extends
                self._role(parent)
                if name in self._ancestry(parent):
                    raise invalid_argument(
                        f'role "{name}" cannot extend "{parent}": "{parent}" already extends '
                        f'"{name}"'
                    )
            permissions = self._require_permissions(spec.permissions) if spec.permissions else None
            if spec.HasField("display_name"):
                role.display_name = spec.display_name
            if spec.HasField("description"):
                role.description = spec.description
            if spec.HasField("extends"):
                role.extends = spec.extends
            if permissions is not None:
                self._role_permissions[name] = dict.fromkeys(permissions)
            self._save_role(role)
            result = self._export_role(role, "permissions")
            if self._subscribers:
                pending.append(("role.updated", "Role", "", result))
        self._emit(pending)
        return result

    def delete_role(self, name: str, reassign_to: str = "") -> None:
        """Delete a role. While memberships hold it: without ``reassign_to`` FAILED_PRECONDITION
        "role cannot be deleted as it is assigned to users" [tests, exact message]; with it, those
        memberships get ``reassign_to`` instead. [unknown] a role other roles extend, or the
        default creator/member role, cannot be deleted (FAILED_PRECONDITION)."""
        pending: list[Pending] = []
        with self._lock:
            role = self._role(name)
            if role.default_creator or role.default_member:
                raise EmulatorError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'role "{name}" is a default role and cannot be deleted; make another role '
                    "the default first",
                )
            dependents = [
                r.name for r in self._roles.values() if r.HasField("extends") and r.extends == name
            ]
            if dependents:
                raise EmulatorError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'role "{name}" cannot be deleted as other roles extend it: '
                    + ", ".join(dependents),
                )
            holders = self._role_holders.get(name, set())
            if holders and not reassign_to:
                raise EmulatorError(grpc.StatusCode.FAILED_PRECONDITION, ROLE_STILL_ASSIGNED)
            if holders:
                if reassign_to not in self._roles and reassign_to in self._role_by_id:
                    reassign_to = self._role_by_id[reassign_to]
                self._role(reassign_to)
                if reassign_to == name:
                    raise invalid_argument(f'cannot reassign users of role "{name}" to itself')
                for user_id, org_id in sorted(holders):
                    user = self._users[user_id]
                    _index, membership = self._membership_of(user, org_id)
                    if membership is None:
                        continue
                    names = [r.name for r in membership.roles]
                    names = list(dict.fromkeys(reassign_to if n == name else n for n in names))
                    del membership.roles[:]
                    for new_name in names:
                        membership.roles.add(name=new_name)
                    self._role_holders.setdefault(reassign_to, set()).add((user_id, org_id))
                    self._save_user(user)
                    if self._subscribers:
                        pending.append(
                            (
                                "user.organization_membership_updated",
                                "OrgMembershipEvent",
                                org_id,
                                self._membership_payload(org_id, user),
                            )
                        )
                self._role_holders.pop(name, None)
            exported = self._export_role(role, "permissions")
            del self._roles[name]
            self._role_by_id.pop(role.id, None)
            self._role_permissions.pop(name, None)
            self._forget(ROLE_KIND, name)
            if self._subscribers:
                pending.append(("role.deleted", "Role", "", exported))
        self._emit(pending)

    def role_users_count(self, name: str) -> int:
        """How many users hold the role in at least one organization."""
        with self._lock:
            self._role(name)
            return len({user_id for user_id, _org in self._role_holders.get(name, ())})

    def update_default_roles(
        self, creator: str = "", member: str = ""
    ) -> tuple[roles_pb2.Role, roles_pb2.Role]:
        pending: list[Pending] = []
        with self._lock:
            for name in (creator, member):
                if name:
                    self._role(name)
            for flag, name in (("default_creator", creator), ("default_member", member)):
                if not name:
                    continue
                for role in self._roles.values():
                    value = role.name == name
                    if getattr(role, flag) != value:
                        setattr(role, flag, value)
                        self._save_role(role)
                        if self._subscribers:
                            pending.append(("role.updated", "Role", "", self._export_role(role)))
            creator_role = next((r for r in self._roles.values() if r.default_creator), None)
            member_role = next((r for r in self._roles.values() if r.default_member), None)
            result = (
                self._export_role(creator_role) if creator_role else roles_pb2.Role(),
                self._export_role(member_role) if member_role else roles_pb2.Role(),
            )
        self._emit(pending)
        return result

    def list_dependent_roles(self, name: str) -> list[roles_pb2.Role]:
        with self._lock:
            self._role(name)
            return [
                self._export_role(role)
                for role in self._roles.values()
                if role.HasField("extends") and role.extends == name
            ]

    def delete_role_base(self, name: str) -> None:
        """Remove the role's ``extends`` link."""
        pending: list[Pending] = []
        with self._lock:
            role = self._role(name)
            if role.HasField("extends"):
                role.ClearField("extends")
                self._save_role(role)
                if self._subscribers:
                    pending.append(("role.updated", "Role", "", self._export_role(role)))
        self._emit(pending)

    # -- permissions ------------------------------------------------------------------------------

    def _permission(self, name: str) -> roles_pb2.Permission:
        permission = self._permissions.get(name)
        if permission is None:
            raise not_found(f'permission "{name}" not found')
        return permission

    def create_permission(self, spec: roles_pb2.CreatePermission) -> roles_pb2.Permission:
        """Duplicate names are INVALID_ARGUMENT "duplicate key not allowed" [tests]."""
        pending: list[Pending] = []
        with self._lock:
            if spec.name in self._permissions:
                raise invalid_argument(
                    f'duplicate key not allowed: permission "{spec.name}" already exists'
                )
            now = timestamp_now()
            permission = roles_pb2.Permission(
                id=ids.new_id("perm"), name=spec.name, description=spec.description
            )
            permission.create_time.CopyFrom(now)
            permission.update_time.CopyFrom(now)
            self._index_permission(permission)
            self._save_permission(permission)
            result = copy_message(permission)
            if self._subscribers:
                pending.append(("permission.created", "Permission", "", copy_message(permission)))
        self._emit(pending)
        return result

    def get_permission(self, name: str) -> roles_pb2.Permission:
        with self._lock:
            return copy_message(self._permission(name))

    def update_permission(
        self, name: str, spec: roles_pb2.CreatePermission
    ) -> roles_pb2.Permission:
        """Only the description can change. [unknown] renaming is refused (INVALID_ARGUMENT), as
        role names are immutable."""
        pending: list[Pending] = []
        with self._lock:
            permission = self._permission(name)
            if spec.name != name:
                raise invalid_argument(
                    f'permission "{name}" cannot be renamed to "{spec.name}"; create a new '
                    "permission instead",
                    [FieldViolation("permission.name", "must equal permission_name", "immutable")],
                )
            permission.description = spec.description
            permission.update_time.CopyFrom(timestamp_now())
            self._save_permission(permission)
            result = copy_message(permission)
            if self._subscribers:
                pending.append(("permission.updated", "Permission", "", copy_message(permission)))
        self._emit(pending)
        return result

    def list_permissions(
        self, page_size: int = 0, page_token: str = "", permission_type: int = 0
    ) -> Page:
        """Environment permissions in creation order. The emulator has no Scalekit-predefined
        permissions, so ``type=SCALEKIT`` lists nothing."""
        with self._lock:
            if permission_type == roles_pb2.SCALEKIT:
                return Page([], "", "", 0)
            page, next_token, prev_token, total = page_ids(
                self._permission_ids, "permissions", page_size, page_token
            )
            items = [copy_message(self._permissions[self._permission_by_id[i]]) for i in page]
            return Page(items, next_token, prev_token, total)

    def delete_permission(self, name: str) -> None:
        """Delete a permission and take it off every role that had it."""
        pending: list[Pending] = []
        with self._lock:
            permission = self._permission(name)
            for role_name, permissions in self._role_permissions.items():
                if name in permissions:
                    del permissions[name]
                    self._save_role(self._roles[role_name])
            del self._permissions[name]
            del self._permission_by_id[permission.id]
            remove_sorted(self._permission_ids, permission.id)
            self._forget(PERMISSION_KIND, name)
            if self._subscribers:
                pending.append(("permission.deleted", "Permission", "", copy_message(permission)))
        self._emit(pending)

    def _permission_messages(self, names: Iterable[str]) -> list[roles_pb2.Permission]:
        return [copy_message(self._permissions[n]) for n in names if n in self._permissions]

    def list_role_permissions(self, role_name: str) -> list[roles_pb2.Permission]:
        with self._lock:
            self._role(role_name)
            return self._permission_messages(self._role_permissions.get(role_name, {}))

    def list_effective_role_permissions(self, role_name: str) -> list[roles_pb2.Permission]:
        with self._lock:
            self._role(role_name)
            return self._permission_messages(self._permissions_for([role_name]))

    def add_permissions_to_role(
        self, role_name: str, permission_names: Iterable[str]
    ) -> list[roles_pb2.Permission]:
        """Add permissions (already there: no-op) and return all the role's own permissions."""
        pending: list[Pending] = []
        with self._lock:
            role = self._role(role_name)
            names = self._require_permissions(permission_names)
            current = self._role_permissions.setdefault(role_name, {})
            for name in names:
                current[name] = None
            self._save_role(role)
            result = self._permission_messages(current)
            if self._subscribers:
                pending.append(("role.updated", "Role", "", self._export_role(role, "permissions")))
        self._emit(pending)
        return result

    def remove_permission_from_role(self, role_name: str, permission_name: str) -> None:
        pending: list[Pending] = []
        with self._lock:
            role = self._role(role_name)
            current = self._role_permissions.get(role_name, {})
            if permission_name not in current:
                raise not_found(f'role "{role_name}" has no permission "{permission_name}"')
            del current[permission_name]
            self._save_role(role)
            if self._subscribers:
                pending.append(("role.updated", "Role", "", self._export_role(role, "permissions")))
        self._emit(pending)
