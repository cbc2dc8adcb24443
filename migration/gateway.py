"""Every call the migration makes to Scalekit: through ``scalekit_auth.client.get_client()``.

The gateway adds what an import needs around the SDK: the shared rate limit before each call,
a pause of every worker on RESOURCE_EXHAUSTED, and one classification of errors into
``AlreadyExists``, ``NotFound``, ``Transient``, ``Permanent`` and ``Fatal``.

Retry-after: the SDK wraps the ``grpc.RpcError`` in its exception and keeps it as
``exc.args[0]``; that object still carries the call's trailing metadata, so the ``retry-after``
trailer (sent by the emulator; the real service documents none) is read from there. When it is
absent, ``MIGRATION['RATE_LIMITED_PAUSE_SECONDS']`` is used.

The SDK itself retries UNAVAILABLE twice (about 1 s and 2 s, jittered) and re-authenticates on
UNAUTHENTICATED before an error reaches this module; everything else surfaces at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from scalekit.common.exceptions import (
    ScalekitBadRequestException,
    ScalekitConflictException,
    ScalekitException,
    ScalekitForbiddenException,
    ScalekitNotFoundException,
    ScalekitServerException,
    ScalekitTooManyRequestsException,
    ScalekitUnauthorizedException,
)
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from .ratelimit import RateLimiter

T = TypeVar("T")
_DUPLICATE = re.compile(r"duplicate|already exist", re.IGNORECASE)
PAGE_SIZE = 100


class ScalekitCallError(Exception):
    """A failed call, classified. ``code`` is a short category stored on the record."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class AlreadyExists(ScalekitCallError):
    code = "already_exists"


class NotFound(ScalekitCallError):
    code = "not_found"


class Transient(ScalekitCallError):
    """Worth trying again later: UNAVAILABLE, timeouts, internal errors, a long rate limit."""

    code = "unavailable"


class Permanent(ScalekitCallError):
    """Sending the same thing again will fail the same way (validation, conflicts of identity)."""

    code = "rejected"


class Fatal(ScalekitCallError):
    """Nothing can succeed until someone acts (credentials rejected): stop the run."""

    code = "unauthorized"


def _describe(exc: ScalekitServerException) -> str:
    status = getattr(exc.grpc_status, "name", str(exc.grpc_status))
    message = exc.message or ""
    return f"{status}: {message}".strip().rstrip(":")


def classify(exc: Exception) -> ScalekitCallError:
    """One SDK exception as one of the gateway's errors (never leaks the credentials)."""
    if isinstance(exc, ScalekitCallError):
        return exc
    if isinstance(exc, ScalekitConflictException):
        return AlreadyExists(_describe(exc))
    if isinstance(exc, ScalekitBadRequestException):
        if _DUPLICATE.search(exc.message or ""):
            return AlreadyExists(_describe(exc))
        return Permanent(_describe(exc), "bad_request")
    if isinstance(exc, ScalekitNotFoundException):
        return NotFound(_describe(exc))
    if isinstance(exc, ScalekitTooManyRequestsException):
        return Transient(_describe(exc), "rate_limited")
    if isinstance(exc, ScalekitUnauthorizedException | ScalekitForbiddenException):
        return Fatal(f"{_describe(exc)} (check SCALEKIT_CLIENT_ID / SCALEKIT_CLIENT_SECRET)")
    if isinstance(exc, ScalekitServerException):
        name = getattr(exc.grpc_status, "name", "")
        if name in {
            "UNAVAILABLE",
            "DEADLINE_EXCEEDED",
            "INTERNAL",
            "UNKNOWN",
            "CANCELLED",
            "ABORTED",
            "DATA_LOSS",
        }:
            code = {"DEADLINE_EXCEEDED": "timeout", "UNAVAILABLE": "unavailable"}.get(
                name, "internal"
            )
            return Transient(_describe(exc), code)
        return Permanent(_describe(exc), "rejected")
    if isinstance(exc, ScalekitException):
        # The SDK wraps transport failures (connection refused, TLS) in a bare ScalekitException.
        return Transient(
            f"transport error: {type(exc.args[0]).__name__ if exc.args else 'unknown'}", "transport"
        )
    return Permanent(f"unexpected error: {type(exc).__name__}", "unexpected")


def retry_after_seconds(exc: Exception) -> float | None:
    """The ``retry-after`` trailer of the gRPC call behind an SDK exception, if any."""
    call = exc.args[0] if exc.args else None
    trailing = getattr(call, "trailing_metadata", None)
    if not callable(trailing):
        return None
    try:
        for key, value in trailing() or ():
            if key.lower() == "retry-after":
                return max(float(value), 0.0)
    except (TypeError, ValueError):
        return None
    return None


class CallStats:
    """Counters of one gateway (thread-safe), for summaries and benchmarks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.rate_limited = 0
        self.errors: Counter[str] = Counter()

    def add(self, method: str, error: str = "") -> None:
        with self.lock:
            self.calls[method] += 1
            if error:
                self.errors[error] += 1

    def limited(self) -> None:
        with self.lock:
            self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "total_calls": sum(self.calls.values()),
                "rate_limited": self.rate_limited,
                "errors": dict(self.errors),
            }


class UserEmailIndex:
    """Every Scalekit user's id by lower-cased email, read with one ``ListUsers`` pass.

    Scalekit has no lookup by email, so finding a user without an external id means listing
    users. One index per run and process (``batches.email_index``) is built on the first such
    lookup and then kept current with the users this process creates; a user created elsewhere
    since (another worker, a crashed attempt) is found by rebuilding it when Scalekit says the
    email is taken but the index does not have it. Memory: one entry per Scalekit user, built
    only if a lookup by email is needed at all.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # the dict; never held during a call to Scalekit
        self.build_lock = threading.Lock()  # one build at a time; lookups wait for it
        self.ids: dict[str, str] | None = None
        self.added_during_build: dict[str, str] | None = None
        self.built_at = 0.0
        self.builds = 0

    def get(
        self, gateway: Gateway, email: str, *, rebuild_if_older_than: float = 0.0
    ) -> str | None:
        """The id of the user with ``email``; builds the index, or rebuilds it when it misses
        the email and was built before ``rebuild_if_older_than`` (a ``time.monotonic()``)."""
        wanted = email.lower()
        with self.build_lock:
            with self.lock:
                stale = self.ids is None or (
                    wanted not in self.ids and self.built_at < rebuild_if_older_than
                )
            if stale:
                self._build(gateway)
        with self.lock:
            return (self.ids or {}).get(wanted)

    def add(self, email: str, user_id: str) -> None:
        """A user this process created (never waits for a build in progress)."""
        with self.lock:
            if self.ids is not None:
                self.ids[email.lower()] = user_id
            if self.added_during_build is not None:
                self.added_during_build[email.lower()] = user_id

    def discard(self, email: str) -> None:
        with self.lock:
            if self.ids is not None:
                self.ids.pop(email.lower(), None)

    def _build(self, gateway: Gateway) -> None:
        started = time.monotonic()
        with self.lock:
            self.added_during_build = {}
        ids: dict[str, str] = {}
        try:
            token: str | None = None
            while True:
                response = gateway.call(
                    "ListUsers",
                    gateway.client.users.list_users,
                    page_size=PAGE_SIZE,
                    page_token=token,
                )
                for user in response.users:
                    ids[user.email.lower()] = user.id
                token = response.next_page_token
                if not token:
                    break
        finally:
            with self.lock:
                added, self.added_during_build = self.added_during_build or {}, None
        with self.lock:
            self.ids = {**ids, **added}
            self.built_at = started
            self.builds += 1


class Gateway:
    def __init__(
        self,
        client: Any,
        limiter: RateLimiter,
        *,
        default_pause: float = 2.0,
        max_rate_limited_wait: float = 600.0,
        stats: CallStats | None = None,
        email_index: UserEmailIndex | None = None,
    ) -> None:
        self.client = client
        self.limiter = limiter
        self.default_pause = default_pause
        self.max_rate_limited_wait = max_rate_limited_wait
        self.stats = stats or CallStats()
        self.email_index = email_index or UserEmailIndex()
        #: Called before every attempt of every call (a Celery batch renews its lease there,
        #: so a record rate limited for minutes does not look abandoned).
        self.heartbeat: Callable[[], None] | None = None

    def call(self, method: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` under the rate limit; wait out RESOURCE_EXHAUSTED; classify errors."""
        started = time.monotonic()
        while True:
            if self.heartbeat is not None:
                self.heartbeat()
            self.limiter.acquire()
            try:
                result = fn(*args, **kwargs)
            except ScalekitTooManyRequestsException as exc:
                self.stats.add(method, "rate_limited")
                self.stats.limited()
                pause = retry_after_seconds(exc)
                self.limiter.pause(self.default_pause if pause is None else pause)
                if time.monotonic() - started > self.max_rate_limited_wait:
                    raise Transient(
                        f"rate limited for more than {self.max_rate_limited_wait:.0f}s",
                        "rate_limited",
                    ) from None
                continue
            except Exception as exc:  # noqa: BLE001 - classified, never swallowed
                error = classify(exc)
                self.stats.add(method, error.code)
                raise error from None
            self.stats.add(method)
            return result[0] if isinstance(result, tuple) else result

    # roles and permissions -----------------------------------------------------------------
    def list_roles(self) -> list[Any]:
        return list(self.call("ListRoles", self.client.roles.list_roles).roles)

    def get_role(self, name: str) -> Any:
        return self.call("GetRole", self.client.roles.get_role, name).role

    def create_role(self, payload: dict[str, Any]) -> Any:
        role = roles_pb2.CreateRole(
            name=payload["name"],
            display_name=payload.get("display_name") or payload["name"],
            permissions=payload.get("permissions") or [],
        )
        if payload.get("description"):
            role.description = payload["description"]
        return self.call("CreateRole", self.client.roles.create_role, role).role

    def delete_role(self, name: str) -> None:
        self.call("DeleteRole", self.client.roles.delete_role, name)

    def list_permission_names(self) -> set[str]:
        names: set[str] = set()
        token: str | None = None
        while True:
            response = self.call(
                "ListPermissions",
                self.client.permissions.list_permissions,
                page_token=token,
                page_size=PAGE_SIZE,
            )
            names.update(p.name for p in response.permissions)
            token = response.next_page_token
            if not token:
                return names

    def create_permission(self, name: str, description: str = "") -> None:
        permission = roles_pb2.CreatePermission(name=name, description=description or name)
        self.call("CreatePermission", self.client.permissions.create_permission, permission)

    def get_permission(self, name: str) -> Any:
        return self.call("GetPermission", self.client.permissions.get_permission, name).permission

    def delete_permission(self, name: str) -> None:
        self.call("DeletePermission", self.client.permissions.delete_permission, name)

    def role_permission_names(self, role_name: str) -> set[str]:
        """The permissions ``role_name`` holds itself (not those it inherits)."""
        response = self.call(
            "ListRolePermissions", self.client.permissions.list_role_permissions, role_name
        )
        return {p.name for p in response.permissions}

    # organizations -------------------------------------------------------------------------
    def create_organization(self, payload: dict[str, Any]) -> Any:
        organization = organizations_pb2.CreateOrganization(
            display_name=payload["display_name"],
            external_id=payload["external_id"],
            metadata=payload.get("metadata") or {},
        )
        return self.call(
            "CreateOrganization", self.client.organization.create_organization, organization
        ).organization

    def get_organization(self, organization_id: str) -> Any:
        return self.call(
            "GetOrganization", self.client.organization.get_organization, organization_id
        ).organization

    def find_organization(self, external_id: str) -> Any | None:
        try:
            return self.call(
                "GetOrganization",
                self.client.organization.get_organization_by_external_id,
                external_id,
            ).organization
        except NotFound:
            return None

    def delete_organization(self, organization_id: str) -> None:
        self.call(
            "DeleteOrganization", self.client.organization.delete_organization, organization_id
        )

    # users ---------------------------------------------------------------------------------
    @staticmethod
    def _roles(names: Iterable[str]) -> list[Any]:
        return [commons_pb2.Role(name=name) for name in names]

    def create_user(
        self, organization_id: str, payload: dict[str, Any], roles: list[str], *, invite: bool
    ) -> Any:
        """Create the user with its membership of ``organization_id`` holding ``roles``.

        With no roles Scalekit chooses: its default creator role (admin) for the
        organization's first member, its default member role for the others. The user flow
        always names one (``MIGRATION['DEFAULT_ROLE']``); the same goes for ``create_membership``.
        """
        profile = users_pb2.CreateUserProfile()
        if payload.get("first_name"):
            profile.given_name = payload["first_name"]
        if payload.get("last_name"):
            profile.family_name = payload["last_name"]
        if payload.get("first_name") or payload.get("last_name"):
            profile.name = " ".join(
                filter(None, [payload.get("first_name"), payload.get("last_name")])
            )
        user = users_pb2.CreateUser(
            email=payload["email"],
            user_profile=profile,
            metadata=payload.get("metadata") or {},
            membership=users_pb2.CreateMembership(roles=self._roles(roles)),
        )
        if payload.get("external_id"):
            user.external_id = payload["external_id"]
        created = self.call(
            "CreateUserAndMembership",
            self.client.users.create_user_and_membership,
            organization_id,
            user,
            send_invitation_email=invite,
        ).user
        self.email_index.add(created.email, created.id)
        return created

    def get_user(self, user_id: str) -> Any:
        return self.call("GetUser", self.client.users.get_user, user_id).user

    def find_user_by_external_id(self, external_id: str) -> Any | None:
        try:
            return self.call("GetUser", self.client.users.get_user_by_external_id, external_id).user
        except NotFound:
            return None

    def find_user_by_email(self, email: str, *, expected: bool = False) -> Any | None:
        """The user with ``email`` (case-insensitively), through the run's ``UserEmailIndex``.

        ``expected``: Scalekit just said the email is taken, so a miss means the index is stale
        (the user was created since it was built): it is rebuilt once and asked again.
        """
        asked = time.monotonic() if expected else 0.0
        user_id = self.email_index.get(self, email, rebuild_if_older_than=asked)
        if user_id is None:
            return None
        try:
            user = self.get_user(user_id)
        except NotFound:
            self.email_index.discard(email)  # deleted since the index was built
            return None
        if user.email.lower() != email.lower():
            self.email_index.discard(email)
            return None
        return user

    def set_user_external_id(self, user_id: str, external_id: str) -> Any:
        return self.call(
            "UpdateUser",
            self.client.users.update_user,
            user_id,
            users_pb2.UpdateUser(external_id=external_id),
        ).user

    def create_membership(
        self, organization_id: str, user_id: str, roles: list[str], *, invite: bool
    ) -> Any:
        return self.call(
            "CreateMembership",
            self.client.users.create_membership,
            organization_id,
            user_id,
            users_pb2.CreateMembership(roles=self._roles(roles)),
            send_invitation_email=invite,
        ).user

    def update_membership_roles(self, organization_id: str, user_id: str, roles: list[str]) -> Any:
        return self.call(
            "UpdateMembership",
            self.client.users.update_membership,
            organization_id,
            user_id,
            users_pb2.UpdateMembership(roles=self._roles(roles)),
        ).user

    def delete_membership(self, organization_id: str, user_id: str) -> None:
        self.call("DeleteMembership", self.client.users.delete_membership, organization_id, user_id)

    def delete_user(self, user_id: str) -> None:
        self.call("DeleteUser", self.client.users.delete_user, user_id)


def memberships_of(user: Any) -> dict[str, set[str]]:
    """A Scalekit user's memberships as ``{organization_id: {role names}}``."""
    return {m.organization_id: {role.name for role in m.roles} for m in user.memberships}
