"""The emulator's directory: organizations, users and their memberships, roles and permissions
(the last two in ``roles.py``, mixed into :class:`Directory`; list plumbing in ``records.py``).

State lives in memory as the SDK's own protobuf messages, behind one lock, with O(1) indexes
(organization by id and external id, user by id, lower-cased email and external id, role and
permission by name). Lists are kept as sorted id lists: ids grow with creation time, so keyset
pagination is a bisect plus a slice, not a scan. Every write goes through to an optional
:class:`~scalekit_auth.emulator.persistence.SqlitePersistence` (loaded on construction).

Listeners registered with :meth:`Directory.subscribe` receive an :class:`Event` for every change
(the webhook sender is one). They are called after the lock is released, and their exceptions are
logged, never raised into the RPC.

Where the real service's behaviour is not known (marked [unknown] in
``/work/shared/scalekit-wire.md``), the choice made here says so in the docstring of the method.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.json_format import MessageToDict
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from . import ids
from .errors import EmulatorError, FieldViolation, invalid_argument, not_found
from .persistence import SqlitePersistence
from .records import (
    Page,
    Pending,
    copy_message,
    insert_sorted,
    page_ids,
    remove_sorted,
    timestamp_now,
)
from .roles import PERMISSION_KIND, ROLE_KIND, RolesAndPermissions

logger = logging.getLogger(__name__)

ORGANIZATION_KIND = "directory.organization"
USER_KIND = "directory.user"
DIRECTORY_KINDS = (ORGANIZATION_KIND, USER_KIND, ROLE_KIND, PERMISSION_KIND)

DEFAULT_ENVIRONMENT_ID = "env_000000000000000001"
INVITATION_TTL_S = 7 * 24 * 3600
PROVISIONING_METHOD = "direct_provision"

ACTIVE = commons_pb2.ACTIVE
PENDING_INVITE = commons_pb2.PENDING_INVITE

# Keys of Directory.duplicate_status. Only INVALID_ARGUMENT has been observed for a duplicate
# (role and permission names, wire doc 4.5); the others are [unknown], hence settable.
DEFAULT_DUPLICATE_STATUS: dict[str, grpc.StatusCode] = {
    "organization_external_id": grpc.StatusCode.INVALID_ARGUMENT,
    "organization_slug": grpc.StatusCode.INVALID_ARGUMENT,
    "user_email": grpc.StatusCode.INVALID_ARGUMENT,
    "user_external_id": grpc.StatusCode.INVALID_ARGUMENT,
    "membership": grpc.StatusCode.INVALID_ARGUMENT,
}


@dataclass(frozen=True)
class Event:
    """A change in the directory, shaped like a Scalekit webhook: ``data`` is snake_case
    protojson of the object (membership events carry ``{"organization": ..., "user": ...}``)."""

    type: str
    object_type: str
    organization_id: str
    data: dict = field(default_factory=dict)


def _to_dict(payload: Any) -> dict:
    """Snake_case protojson. Membership payloads (``{"organization", "user"}``) also get
    ``user.membership``: the membership in that organization, as Scalekit's documented
    ``OrgMembershipEvent`` examples show it."""
    if not isinstance(payload, dict):
        return MessageToDict(payload, preserving_proto_field_name=True)
    data = {key: _to_dict(value) for key, value in payload.items()}
    if set(data) == {"organization", "user"}:
        org_id = data["organization"].get("id")
        for membership in data["user"].get("memberships", []):
            if membership.get("organization_id") == org_id:
                data["user"]["membership"] = membership
    return data


def _by_id_or_external_id(
    noun: str, items: dict[str, Any], by_external_id: dict[str, str], item_id: str, external_id: str
) -> Any:
    """The stored object named by ``item_id`` or else ``external_id`` (the request's oneof)."""
    if item_id:
        found = items.get(item_id)
        if found is None:
            raise not_found(f'{noun} "{item_id}" not found')
        return found
    if external_id:
        key = by_external_id.get(external_id)
        if key is None:
            raise not_found(f'{noun} with external_id "{external_id}" not found')
        return items[key]
    article = "an" if noun[0] in "aeiou" else "a"
    raise invalid_argument(
        f"{article} {noun} id or external_id is required",
        [FieldViolation("id", "value is required", "required")],
    )


class Directory(RolesAndPermissions):
    """Thread-safe in-memory directory of one Scalekit environment."""

    def __init__(
        self,
        persistence: SqlitePersistence | None = None,
        *,
        environment_id: str = DEFAULT_ENVIRONMENT_ID,
    ) -> None:
        self.environment_id = environment_id
        self.duplicate_status: dict[str, grpc.StatusCode] = dict(DEFAULT_DUPLICATE_STATUS)
        self.invitation_emails: list[dict] = []
        self._persistence = persistence
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._clear_state()
        with self._lock:
            if persistence is not None:
                self._load()
            if not self._roles:
                self._seed_roles()

    # -- state -------------------------------------------------------------------------------

    def _clear_state(self) -> None:
        self._orgs: dict[str, organizations_pb2.Organization] = {}
        self._org_ids: list[str] = []
        self._org_by_external_id: dict[str, str] = {}
        self._org_by_slug: dict[str, str] = {}
        self._users: dict[str, users_pb2.User] = {}
        self._user_ids: list[str] = []
        self._user_by_email: dict[str, str] = {}
        self._user_by_external_id: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}
        self._membership_count = 0
        # role name -> {(user id, organization id)}: who holds a role, for the delete rule and
        # for reassigning, without scanning users. Kept for unknown role names too (state
        # persisted before memberships were refused unknown roles).
        self._role_holders: dict[str, set[tuple[str, str]]] = {}
        self._roles: dict[str, roles_pb2.Role] = {}
        self._role_by_id: dict[str, str] = {}
        self._role_permissions: dict[str, dict[str, None]] = {}
        self._permissions: dict[str, roles_pb2.Permission] = {}
        self._permission_ids: list[str] = []
        self._permission_by_id: dict[str, str] = {}
        self._invites_resent: dict[tuple[str, str], int] = {}
        self.invitation_emails.clear()

    def _load(self) -> None:
        assert self._persistence is not None
        for _key, blob in self._persistence.load(PERMISSION_KIND):
            permission = roles_pb2.Permission.FromString(blob)
            self._index_permission(permission)
        for _key, blob in self._persistence.load(ROLE_KIND):
            role = roles_pb2.Role.FromString(blob)
            self._role_permissions[role.name] = {p.name: None for p in role.permissions}
            del role.permissions[:]
            self._roles[role.name] = role
            self._role_by_id[role.id] = role.name
        for _key, blob in self._persistence.load(ORGANIZATION_KIND):
            org = organizations_pb2.Organization.FromString(blob)
            self._index_organization(org)
        self._org_ids.sort()
        for _key, blob in self._persistence.load(USER_KIND):
            user = users_pb2.User.FromString(blob)
            self._users[user.id] = user
            self._user_ids.append(user.id)
            self._user_by_email[user.email.lower()] = user.id
            if user.HasField("external_id") and user.external_id:
                self._user_by_external_id[user.external_id] = user.id
            for membership in user.memberships:
                self._members.setdefault(membership.organization_id, []).append(user.id)
                self._hold_roles(user.id, membership)
                self._membership_count += 1
        self._user_ids.sort()
        for members in self._members.values():
            members.sort()

    def _index_organization(self, org: organizations_pb2.Organization) -> None:
        self._orgs[org.id] = org
        self._org_ids.append(org.id)
        if org.HasField("external_id") and org.external_id:
            self._org_by_external_id[org.external_id] = org.id
        if org.HasField("slug") and org.slug:
            self._org_by_slug[org.slug] = org.id
        self._members.setdefault(org.id, [])

    def _hold_roles(self, user_id: str, membership: commons_pb2.OrganizationMembership) -> None:
        for role in membership.roles:
            self._role_holders.setdefault(role.name, set()).add(
                (user_id, membership.organization_id)
            )

    def _release_roles(self, user_id: str, membership: commons_pb2.OrganizationMembership) -> None:
        for role in membership.roles:
            holders = self._role_holders.get(role.name)
            if holders is not None:
                holders.discard((user_id, membership.organization_id))
                if not holders:
                    del self._role_holders[role.name]

    # -- persistence ------------------------------------------------------------------------------

    def _save_org(self, org: organizations_pb2.Organization) -> None:
        if self._persistence is not None:
            self._persistence.save(ORGANIZATION_KIND, org.id, org.SerializeToString())

    def _save_user(self, user: users_pb2.User) -> None:
        if self._persistence is not None:
            self._persistence.save(USER_KIND, user.id, user.SerializeToString())

    def _forget(self, kind: str, key: str) -> None:
        if self._persistence is not None:
            self._persistence.delete(kind, key)

    # -- events -----------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback(event)`` after every change, outside the directory's lock."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

    def _emit(self, pending: list[Pending]) -> None:
        subscribers = self._subscribers
        if not pending or not subscribers:
            return
        for event_type, object_type, organization_id, payload in pending:
            event = Event(event_type, object_type, organization_id, _to_dict(payload))
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    logger.exception("directory event listener failed on %s", event_type)

    def _membership_payload(self, org_id: str, user: users_pb2.User) -> dict:
        org = self._orgs.get(org_id)
        return {
            "organization": copy_message(org)
            if org is not None
            else organizations_pb2.Organization(),
            "user": self._export_user(user),
        }

    # -- errors -----------------------------------------------------------------------------------

    def _duplicate(self, kind: str, message: str) -> EmulatorError:
        return EmulatorError(
            self.duplicate_status.get(kind, grpc.StatusCode.INVALID_ARGUMENT), message
        )

    # -- reset and counts -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (memory and the directory's rows in the persistence store), restore
        the default duplicate statuses, and re-seed the ``admin`` and ``member`` roles every
        environment has out of the box. Subscribers stay."""
        with self._lock:
            self._clear_state()
            self.duplicate_status.clear()
            self.duplicate_status.update(DEFAULT_DUPLICATE_STATUS)
            if self._persistence is not None:
                self._persistence.clear(DIRECTORY_KINDS)
            self._seed_roles()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "organizations": len(self._orgs),
                "users": len(self._users),
                "memberships": self._membership_count,
                "roles": len(self._roles),
                "permissions": len(self._permissions),
                "invitation_emails": len(self.invitation_emails),
            }

    # -- organizations ----------------------------------------------------------------------------

    def _org(self, org_id: str = "", external_id: str = "") -> organizations_pb2.Organization:
        return _by_id_or_external_id(
            "organization", self._orgs, self._org_by_external_id, org_id, external_id
        )

    def get_organization(self, org_id: str) -> organizations_pb2.Organization | None:
        with self._lock:
            org = self._orgs.get(org_id)
            return copy_message(org) if org is not None else None

    def get_organization_by_external_id(
        self, external_id: str
    ) -> organizations_pb2.Organization | None:
        with self._lock:
            found = self._org_by_external_id.get(external_id)
            return copy_message(self._orgs[found]) if found else None

    def require_organization(
        self, org_id: str = "", external_id: str = ""
    ) -> organizations_pb2.Organization:
        """The organization with this id (or else external id); NOT_FOUND otherwise."""
        with self._lock:
            return copy_message(self._org(org_id, external_id))

    def create_organization(
        self, spec: organizations_pb2.CreateOrganization
    ) -> organizations_pb2.Organization:
        """[unknown] an empty ``external_id`` or ``slug`` is treated as not given. An
        unspecified region becomes ``US`` (the docs: "currently limited to US")."""
        pending: list[Pending] = []
        with self._lock:
            external_id = spec.external_id if spec.HasField("external_id") else ""
            slug = spec.slug if spec.HasField("slug") else ""
            if external_id and external_id in self._org_by_external_id:
                raise self._duplicate(
                    "organization_external_id",
                    f'organization with external_id "{external_id}" already exists',
                )
            if slug and slug in self._org_by_slug:
                raise self._duplicate(
                    "organization_slug", f'organization with slug "{slug}" already exists'
                )
            now = timestamp_now()
            org = organizations_pb2.Organization(
                id=ids.new_id("org"),
                display_name=spec.display_name,
                region_code=spec.region_code or commons_pb2.US,
                metadata=dict(spec.metadata),
            )
            org.create_time.CopyFrom(now)
            org.update_time.CopyFrom(now)
            if external_id:
                org.external_id = external_id
            if slug:
                org.slug = slug
            if spec.HasField("logo_url") and spec.logo_url:
                org.logo_url = spec.logo_url
            self._index_organization(org)
            self._save_org(org)
            result = copy_message(org)
            if self._subscribers:
                pending.append(("organization.created", "Organization", org.id, copy_message(org)))
        self._emit(pending)
        return result

    def list_organizations(
        self, page_size: int = 0, page_token: str = "", external_id: str | None = None
    ) -> Page:
        """A page of organizations in creation order. With ``external_id``, the (at most one)
        organization carrying it."""
        with self._lock:
            if external_id is not None:
                found = self._org_by_external_id.get(external_id)
                items = [copy_message(self._orgs[found])] if found else []
                return Page(items, "", "", len(items))
            page, next_token, prev_token, total = page_ids(
                self._org_ids, "organizations", page_size, page_token
            )
            return Page([copy_message(self._orgs[i]) for i in page], next_token, prev_token, total)

    def update_organization(
        self,
        spec: organizations_pb2.UpdateOrganization,
        *,
        org_id: str = "",
        external_id: str = "",
        paths: Iterable[str] = (),
    ) -> organizations_pb2.Organization:
        """Apply an ``UpdateOrganization``.

        Without a field mask, fields present in ``spec`` are set (proto3 optional presence), an
        empty ``external_id``/``slug``/``logo_url`` clears it, and a non-empty ``metadata``
        replaces the stored map ([unknown]: replace versus merge). With a mask (``paths``), exactly
        the named fields are copied, so an empty value clears.
        """
        pending: list[Pending] = []
        with self._lock:
            org = self._org(org_id, external_id)
            updated = copy_message(org)
            fields = self._organization_update_fields(spec, list(paths))
            for name in fields:
                if name == "metadata":
                    updated.metadata.clear()
                    updated.metadata.update(spec.metadata)
                elif name in ("external_id", "slug", "logo_url"):
                    value = getattr(spec, name)
                    if value:
                        setattr(updated, name, value)
                    else:
                        updated.ClearField(name)
                else:
                    setattr(updated, name, getattr(spec, name))
            new_external = updated.external_id if updated.HasField("external_id") else ""
            old_external = org.external_id if org.HasField("external_id") else ""
            if new_external != old_external and new_external in self._org_by_external_id:
                raise self._duplicate(
                    "organization_external_id",
                    f'organization with external_id "{new_external}" already exists',
                )
            new_slug = updated.slug if updated.HasField("slug") else ""
            old_slug = org.slug if org.HasField("slug") else ""
            if new_slug != old_slug and new_slug in self._org_by_slug:
                raise self._duplicate(
                    "organization_slug", f'organization with slug "{new_slug}" already exists'
                )
            if old_external != new_external:
                self._org_by_external_id.pop(old_external, None)
                if new_external:
                    self._org_by_external_id[new_external] = org.id
            if old_slug != new_slug:
                self._org_by_slug.pop(old_slug, None)
                if new_slug:
                    self._org_by_slug[new_slug] = org.id
            updated.update_time.CopyFrom(timestamp_now())
            org.CopyFrom(updated)
            self._save_org(org)
            result = copy_message(org)
            if self._subscribers:
                pending.append(("organization.updated", "Organization", org.id, copy_message(org)))
        self._emit(pending)
        return result

    @staticmethod
    def _organization_update_fields(
        spec: organizations_pb2.UpdateOrganization, paths: list[str]
    ) -> list[str]:
        updatable = ("display_name", "external_id", "metadata", "slug", "logo_url")
        if paths:
            names = []
            for path in paths:
                name = path.removeprefix("organization.")
                if name not in updatable:
                    raise invalid_argument(
                        f'update_mask path "{path}" is not an updatable organization field; '
                        f"use one of {', '.join(updatable)}",
                        [FieldViolation("update_mask", f'unknown path "{path}"', "update_mask")],
                    )
                names.append(name)
            if "display_name" in names and not spec.display_name:
                raise invalid_argument(
                    "display_name cannot be cleared: an organization needs a name",
                    [FieldViolation("organization.display_name", "value is required", "required")],
                )
            return names
        names = [name for name in updatable if name != "metadata" and spec.HasField(name)]
        if spec.metadata:
            names.append("metadata")
        return names

    def update_organization_settings(
        self, org_id: str, features: Iterable[organizations_pb2.OrganizationSettingsFeature]
    ) -> organizations_pb2.Organization:
        """Set feature flags (e.g. ``sso``, ``dir_sync``) by name, keeping the others."""
        pending: list[Pending] = []
        with self._lock:
            org = self._org(org_id)
            current = {f.name: f for f in org.settings.features}
            for feature in features:
                if feature.name in current:
                    current[feature.name].enabled = feature.enabled
                else:
                    org.settings.features.add(name=feature.name, enabled=feature.enabled)
            org.update_time.CopyFrom(timestamp_now())
            self._save_org(org)
            result = copy_message(org)
            if self._subscribers:
                pending.append(("organization.updated", "Organization", org.id, copy_message(org)))
        self._emit(pending)
        return result

    def delete_organization(self, org_id: str = "", external_id: str = "") -> None:
        """Delete the organization and every membership in it. Users stay (they belong to the
        environment), even when left without a membership [unknown]."""
        pending: list[Pending] = []
        with self._lock:
            org = self._org(org_id, external_id)
            changed_users = []
            for user_id in self._members.pop(org.id, []):
                user = self._users[user_id]
                for index, membership in enumerate(user.memberships):
                    if membership.organization_id == org.id:
                        self._release_roles(user_id, membership)
                        del user.memberships[index]
                        self._membership_count -= 1
                        break
                changed_users.append(user)
            del self._orgs[org.id]
            remove_sorted(self._org_ids, org.id)
            if org.HasField("external_id"):
                self._org_by_external_id.pop(org.external_id, None)
            if org.HasField("slug"):
                self._org_by_slug.pop(org.slug, None)
            if self._persistence is not None:
                self._persistence.save_many(
                    USER_KIND, [(u.id, u.SerializeToString()) for u in changed_users]
                )
                self._persistence.delete(ORGANIZATION_KIND, org.id)
            if self._subscribers:
                pending.append(("organization.deleted", "Organization", org.id, copy_message(org)))
        self._emit(pending)

    # -- users ------------------------------------------------------------------------------------

    def _user(self, user_id: str = "", external_id: str = "") -> users_pb2.User:
        return _by_id_or_external_id(
            "user", self._users, self._user_by_external_id, user_id, external_id
        )

    def _export_user(self, user: users_pb2.User) -> users_pb2.User:
        """A copy as served: each membership role carries the role's id and display name when the
        role exists, and the membership its effective permissions."""
        out = copy_message(user)
        for membership in out.memberships:
            names = []
            for role_ref in membership.roles:
                role = self._roles.get(role_ref.name)
                if role is not None:
                    role_ref.id = role.id
                    role_ref.display_name = role.display_name
                    names.append(role.name)
            if names:
                membership.permissions.extend(self._permissions_for(names))
        return out

    def find_user_by_email(self, email: str) -> users_pb2.User | None:
        """The user with this email, compared case-insensitively."""
        with self._lock:
            found = self._user_by_email.get(email.lower())
            return self._export_user(self._users[found]) if found else None

    def get_user(self, user_id: str) -> users_pb2.User | None:
        with self._lock:
            user = self._users.get(user_id)
            return self._export_user(user) if user is not None else None

    def get_user_by_external_id(self, external_id: str) -> users_pb2.User | None:
        with self._lock:
            found = self._user_by_external_id.get(external_id)
            return self._export_user(self._users[found]) if found else None

    def require_user(self, user_id: str = "", external_id: str = "") -> users_pb2.User:
        """The user with this id (or else external id); NOT_FOUND otherwise."""
        with self._lock:
            return self._export_user(self._user(user_id, external_id))

    def create_user_and_membership(
        self,
        organization_id: str,
        spec: users_pb2.CreateUser,
        send_invitation_email: bool = True,
    ) -> users_pb2.User:
        """Create a user with one membership.

        With ``send_invitation_email`` (the SDK's default) the membership is PENDING_INVITE, the
        email unverified, and an invitation email is recorded; without it the membership is
        ACTIVE and the email verified [docs]. A membership naming no role gets the default
        creator role (``admin``) when it is the organization's first member, else the default
        member role (``member``) [docs]. The roles must already exist (wire doc 4.2): an
        unknown role name or id is NOT_FOUND and nothing is created. [unknown] an
        unknown organization is NOT_FOUND; a duplicate email or external id answers with
        ``duplicate_status``. The email is stored as given and matched case-insensitively.
        """
        pending: list[Pending] = []
        with self._lock:
            if not organization_id:
                raise invalid_argument(
                    "organization_id is required",
                    [FieldViolation("organization_id", "value is required", "required")],
                )
            org = self._org(organization_id)
            email_key = spec.email.lower()
            if email_key in self._user_by_email:
                raise self._duplicate(
                    "user_email", f'user with email "{spec.email}" already exists'
                )
            external_id = spec.external_id if spec.HasField("external_id") else ""
            if external_id and external_id in self._user_by_external_id:
                raise self._duplicate(
                    "user_external_id", f'user with external_id "{external_id}" already exists'
                )
            roles = self._membership_role_names(spec.membership.roles, org.id)
            now = timestamp_now()
            user = users_pb2.User(
                id=ids.new_id("usr"),
                environment_id=self.environment_id,
                email=spec.email,
                metadata=dict(spec.metadata),
            )
            user.create_time.CopyFrom(now)
            user.update_time.CopyFrom(now)
            if external_id:
                user.external_id = external_id
            self._fill_profile(user.user_profile, spec.user_profile)
            user.user_profile.id = ids.new_id("usp")
            user.user_profile.email_verified = not send_invitation_email
            membership = self._new_membership(
                org, roles, spec.membership, send_invitation_email, now
            )
            user.memberships.append(membership)

            self._users[user.id] = user
            insert_sorted(self._user_ids, user.id)
            self._user_by_email[email_key] = user.id
            if external_id:
                self._user_by_external_id[external_id] = user.id
            result = self._joined(user, org, membership, send_invitation_email, pending)
        self._emit(pending)
        return result

    def _joined(
        self,
        user: users_pb2.User,
        org: organizations_pb2.Organization,
        membership: commons_pb2.OrganizationMembership,
        send_invitation_email: bool,
        pending: list,
    ) -> users_pb2.User:
        """Index a membership just added to ``user``, store the user and queue its events
        (under the lock); return the user as served."""
        insert_sorted(self._members.setdefault(org.id, []), user.id)
        self._hold_roles(user.id, membership)
        self._membership_count += 1
        if send_invitation_email:
            self._record_invitation(user, org.id)
        self._save_user(user)
        result = self._export_user(user)
        if self._subscribers:
            payload = {"organization": copy_message(org), "user": result}
            pending.append(
                ("user.organization_membership_created", "OrgMembershipEvent", org.id, payload)
            )
            if send_invitation_email:
                pending.append(
                    ("user.organization_invitation", "OrgMembershipEvent", org.id, payload)
                )
        return result

    def _membership_role_names(
        self, requested: Iterable[commons_pb2.Role], org_id: str
    ) -> list[str]:
        """The role names a membership asks for (by name or id), each once, or the default
        role; NOT_FOUND for a role that does not exist (before anything is changed)."""
        names: list[str] = []
        for role_ref in requested:
            name = role_ref.name
            if not name and role_ref.id:
                name = self._role_by_id.get(role_ref.id, "")
                if not name:
                    raise not_found(f'role with id "{role_ref.id}" not found')
            if name and name not in self._roles:
                raise not_found(f'role "{name}" not found')
            if name and name not in names:
                names.append(name)
        if names:
            return names
        return [self._default_role_name(first_member=not self._members.get(org_id))]

    def _default_role_name(self, *, first_member: bool) -> str:
        flag = "default_creator" if first_member else "default_member"
        for role in self._roles.values():
            if getattr(role, flag):
                return role.name
        return "admin" if first_member else "member"

    def _new_membership(
        self,
        org: organizations_pb2.Organization,
        roles: list[str],
        spec: users_pb2.CreateMembership | None,
        invited: bool,
        now: timestamp_pb2.Timestamp,
    ) -> commons_pb2.OrganizationMembership:
        membership = commons_pb2.OrganizationMembership(
            organization_id=org.id,
            membership_status=PENDING_INVITE if invited else ACTIVE,
            name=org.display_name,
            display_name=org.display_name,
            provisioning_method=PROVISIONING_METHOD,
        )
        membership.created_at.CopyFrom(now)
        if invited:
            membership.expires_at.FromSeconds(now.seconds + INVITATION_TTL_S)
        else:
            membership.join_time.CopyFrom(now)
        for name in roles:
            membership.roles.add(name=name)
        if spec is not None:
            membership.metadata.update(spec.metadata)
            if spec.HasField("inviter_email"):
                membership.inviter_email = spec.inviter_email
        return membership

    def _record_invitation(self, user: users_pb2.User, org_id: str) -> None:
        self.invitation_emails.append(
            {
                "to": user.email,
                "user_id": user.id,
                "organization_id": org_id,
                "sent_at": datetime.now(UTC).isoformat(),
            }
        )

    @staticmethod
    def _fill_profile(profile: commons_pb2.UserProfile, spec: users_pb2.CreateUserProfile) -> None:
        """Copy a ``CreateUserProfile``. [unknown] the deprecated ``first_name``/``last_name``
        and ``given_name``/``family_name`` are mirrored into each other, and an empty ``name`` is
        composed from the given and family names."""
        given = spec.given_name or spec.first_name
        family = spec.family_name or spec.last_name
        profile.given_name = given
        profile.family_name = family
        profile.first_name = given
        profile.last_name = family
        profile.name = spec.name or " ".join(part for part in (given, family) if part)
        profile.locale = spec.locale
        profile.phone_number = spec.phone_number
        profile.preferred_username = spec.preferred_username
        profile.metadata.update(spec.metadata)
        profile.custom_attributes.update(spec.custom_attributes)
        profile.groups.extend(spec.groups)
        if spec.HasField("picture"):
            profile.picture = spec.picture
        if spec.HasField("gender"):
            profile.gender = spec.gender

    def list_users(self, page_size: int = 0, page_token: str = "") -> Page:
        """A page of the environment's users, in creation order."""
        with self._lock:
            page, next_token, prev_token, total = page_ids(
                self._user_ids, "users", page_size, page_token
            )
            items = [self._export_user(self._users[i]) for i in page]
            return Page(items, next_token, prev_token, total)

    def list_organization_users(
        self, organization_id: str, page_size: int = 0, page_token: str = ""
    ) -> Page:
        """A page of an organization's members, in user creation order."""
        with self._lock:
            org = self._org(organization_id)
            page, next_token, prev_token, total = page_ids(
                self._members.get(org.id, []), f"members:{org.id}", page_size, page_token
            )
            items = [self._export_user(self._users[i]) for i in page]
            return Page(items, next_token, prev_token, total)

    def update_user(
        self, spec: users_pb2.UpdateUser, *, user_id: str = "", external_id: str = ""
    ) -> users_pb2.User:
        """Apply an ``UpdateUser``: present profile fields are set; non-empty ``metadata``,
        profile ``metadata``/``custom_attributes`` and ``groups`` replace the stored ones
        ([unknown]: replace versus merge); an empty ``external_id`` clears it. The email cannot
        change (there is no field for it)."""
        with self._lock:
            user = self._user(user_id, external_id)
            if spec.HasField("external_id"):
                new_external = spec.external_id
                old_external = user.external_id if user.HasField("external_id") else ""
                if new_external != old_external:
                    if new_external and new_external in self._user_by_external_id:
                        raise self._duplicate(
                            "user_external_id",
                            f'user with external_id "{new_external}" already exists',
                        )
                    self._user_by_external_id.pop(old_external, None)
                    if new_external:
                        user.external_id = new_external
                        self._user_by_external_id[new_external] = user.id
                    else:
                        user.ClearField("external_id")
            if spec.metadata:
                user.metadata.clear()
                user.metadata.update(spec.metadata)
            if spec.HasField("user_profile"):
                self._apply_profile_update(user.user_profile, spec.user_profile)
            user.update_time.CopyFrom(timestamp_now())
            self._save_user(user)
            return self._export_user(user)

    @staticmethod
    def _apply_profile_update(
        profile: commons_pb2.UserProfile, spec: users_pb2.UpdateUserProfile
    ) -> None:
        for name in (
            "name", "locale", "phone_number", "preferred_username", "picture", "gender",
        ):  # fmt: skip
            if spec.HasField(name):
                setattr(profile, name, getattr(spec, name))
        given = spec.given_name if spec.HasField("given_name") else None
        if given is None and spec.HasField("first_name"):
            given = spec.first_name
        if given is not None:
            profile.given_name = given
            profile.first_name = given
        family = spec.family_name if spec.HasField("family_name") else None
        if family is None and spec.HasField("last_name"):
            family = spec.last_name
        if family is not None:
            profile.family_name = family
            profile.last_name = family
        for name in ("metadata", "custom_attributes"):
            values = getattr(spec, name)
            if values:
                target = getattr(profile, name)
                target.clear()
                target.update(values)
        if spec.groups:
            del profile.groups[:]
            profile.groups.extend(spec.groups)

    def delete_user(self, user_id: str = "", external_id: str = "") -> None:
        """Delete the user and its memberships. [unknown] a
        ``user.organization_membership_deleted`` event is sent for each membership."""
        pending: list[Pending] = []
        with self._lock:
            user = self._user(user_id, external_id)
            if self._subscribers:
                for membership in user.memberships:
                    pending.append(
                        (
                            "user.organization_membership_deleted",
                            "OrgMembershipEvent",
                            membership.organization_id,
                            self._membership_payload(membership.organization_id, user),
                        )
                    )
            self._drop_user(user)
        self._emit(pending)

    def _drop_user(self, user: users_pb2.User) -> None:
        for membership in user.memberships:
            self._release_roles(user.id, membership)
            members = self._members.get(membership.organization_id)
            if members is not None:
                remove_sorted(members, user.id)
            self._membership_count -= 1
            self._invites_resent.pop((user.id, membership.organization_id), None)
        del self._users[user.id]
        remove_sorted(self._user_ids, user.id)
        self._user_by_email.pop(user.email.lower(), None)
        if user.HasField("external_id"):
            self._user_by_external_id.pop(user.external_id, None)
        self._forget(USER_KIND, user.id)

    def record_login(self, user_id: str) -> None:
        """Set the user's ``last_login_time`` to now. LookupError for an unknown user."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise LookupError(f'user "{user_id}" not found')
            user.last_login_time.CopyFrom(timestamp_now())
            self._save_user(user)

    # -- memberships ------------------------------------------------------------------------------

    @staticmethod
    def _membership_of(
        user: users_pb2.User, org_id: str
    ) -> tuple[int, commons_pb2.OrganizationMembership | None]:
        for index, membership in enumerate(user.memberships):
            if membership.organization_id == org_id:
                return index, membership
        return -1, None

    def create_membership(
        self,
        organization_id: str,
        spec: users_pb2.CreateMembership,
        *,
        user_id: str = "",
        external_id: str = "",
        send_invitation_email: bool = True,
    ) -> users_pb2.User:
        """Add an existing user to an organization (same role defaults and invitation rules as
        :meth:`create_user_and_membership`). [unknown] an existing membership answers with
        ``duplicate_status["membership"]``."""
        pending: list[Pending] = []
        with self._lock:
            org = self._org(organization_id)
            user = self._user(user_id, external_id)
            if self._membership_of(user, org.id)[1] is not None:
                raise self._duplicate(
                    "membership",
                    f'membership of user "{user.id}" in organization "{org.id}" already exists',
                )
            roles = self._membership_role_names(spec.roles, org.id)
            now = timestamp_now()
            membership = self._new_membership(org, roles, spec, send_invitation_email, now)
            user.memberships.append(membership)
            user.update_time.CopyFrom(now)
            result = self._joined(user, org, membership, send_invitation_email, pending)
        self._emit(pending)
        return result

    def update_membership(
        self,
        organization_id: str,
        spec: users_pb2.UpdateMembership,
        *,
        user_id: str = "",
        external_id: str = "",
    ) -> users_pb2.User:
        """Non-empty ``roles`` replace the membership's roles; non-empty ``metadata`` replaces
        its metadata ([unknown]: replace versus merge)."""
        pending: list[Pending] = []
        with self._lock:
            org = self._org(organization_id)
            user = self._user(user_id, external_id)
            _index, membership = self._membership_of(user, org.id)
            if membership is None:
                raise not_found(f'user "{user.id}" is not a member of organization "{org.id}"')
            if spec.roles:
                names = self._membership_role_names(spec.roles, org.id)
                self._release_roles(user.id, membership)
                del membership.roles[:]
                for name in names:
                    membership.roles.add(name=name)
                self._hold_roles(user.id, membership)
            if spec.metadata:
                membership.metadata.clear()
                membership.metadata.update(spec.metadata)
            user.update_time.CopyFrom(timestamp_now())
            self._save_user(user)
            result = self._export_user(user)
            if self._subscribers:
                payload = {"organization": copy_message(org), "user": result}
                pending.append(
                    ("user.organization_membership_updated", "OrgMembershipEvent", org.id, payload)
                )
        self._emit(pending)
        return result

    def delete_membership(
        self,
        organization_id: str,
        *,
        user_id: str = "",
        external_id: str = "",
        cascade: bool = True,
    ) -> None:
        """Remove a membership. With ``cascade`` (the default, per the field's description) a
        user left without memberships is deleted too."""
        pending: list[Pending] = []
        with self._lock:
            org = self._org(organization_id)
            user = self._user(user_id, external_id)
            index, membership = self._membership_of(user, org.id)
            if membership is None:
                raise not_found(f'user "{user.id}" is not a member of organization "{org.id}"')
            if self._subscribers:
                pending.append(
                    (
                        "user.organization_membership_deleted",
                        "OrgMembershipEvent",
                        org.id,
                        self._membership_payload(org.id, user),
                    )
                )
            self._release_roles(user.id, membership)
            del user.memberships[index]
            self._membership_count -= 1
            self._invites_resent.pop((user.id, org.id), None)
            remove_sorted(self._members.get(org.id, []), user.id)
            if cascade and not user.memberships:
                self._drop_user(user)
            else:
                user.update_time.CopyFrom(timestamp_now())
                self._save_user(user)
        self._emit(pending)

    def resend_invite(self, organization_id: str, user_id: str) -> users_pb2.Invite:
        """Send the invitation again (recorded), extending its expiry. FAILED_PRECONDITION when
        the membership is not a pending invitation [unknown]."""
        pending: list[Pending] = []
        with self._lock:
            org = self._org(organization_id)
            user = self._user(user_id)
            _index, membership = self._membership_of(user, org.id)
            if membership is None:
                raise not_found(f'user "{user.id}" is not a member of organization "{org.id}"')
            if membership.membership_status != PENDING_INVITE:
                raise EmulatorError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'user "{user.id}" has no pending invitation to organization "{org.id}"',
                )
            now = timestamp_now()
            membership.expires_at.FromSeconds(now.seconds + INVITATION_TTL_S)
            count = self._invites_resent.get((user.id, org.id), 0) + 1
            self._invites_resent[(user.id, org.id)] = count
            self._record_invitation(user, org.id)
            self._save_user(user)
            invite = users_pb2.Invite(
                organization_id=org.id, user_id=user.id, status="pending_invite", resent_count=count
            )
            if membership.HasField("inviter_email"):
                invite.inviter_email = membership.inviter_email
            invite.created_at.CopyFrom(membership.created_at)
            invite.expires_at.CopyFrom(membership.expires_at)
            invite.resent_at.CopyFrom(now)
            if self._subscribers:
                pending.append(
                    (
                        "user.organization_invitation",
                        "OrgMembershipEvent",
                        org.id,
                        self._membership_payload(org.id, user),
                    )
                )
        self._emit(pending)
        return invite

    def effective_roles(self, user_id: str, organization_id: str) -> list[str]:
        """The membership's role names that exist as roles (unknown names are ignored, as
        Scalekit ignores unknown roles at login). Empty when there is no such membership."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                return []
            _index, membership = self._membership_of(user, organization_id)
            if membership is None:
                return []
            return [r.name for r in membership.roles if r.name in self._roles]

    def list_user_roles(self, organization_id: str, user_id: str) -> list[commons_pb2.Role]:
        with self._lock:
            self._org(organization_id)
            user = self._user(user_id)
            _index, membership = self._membership_of(user, organization_id)
            if membership is None:
                raise not_found(
                    f'user "{user_id}" is not a member of organization "{organization_id}"'
                )
            return [
                commons_pb2.Role(id=role.id, name=role.name, display_name=role.display_name)
                for role in (self._roles.get(r.name) for r in membership.roles)
                if role is not None
            ]

    def list_user_permissions(
        self, organization_id: str, user_id: str
    ) -> list[users_pb2.Permission]:
        with self._lock:
            self._org(organization_id)
            user = self._user(user_id)
            _index, membership = self._membership_of(user, organization_id)
            if membership is None:
                raise not_found(
                    f'user "{user_id}" is not a member of organization "{organization_id}"'
                )
            names = [r.name for r in membership.roles if r.name in self._roles]
            return [
                users_pb2.Permission(id=p.id, name=p.name, description=p.description)
                for p in (self._permissions.get(n) for n in self._permissions_for(names))
                if p is not None
            ]
