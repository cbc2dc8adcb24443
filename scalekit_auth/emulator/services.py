"""The directory's gRPC services, on the SDK's own generated servicer base classes.

Every request is first checked against its ``buf.validate`` rules (INVALID_ARGUMENT with the field
violations in ``ErrorInfo.validation_error_info``), then handed to the
:class:`~scalekit_auth.emulator.directory.Directory`, whose errors become the gRPC status they
carry. Authentication, fault injection and counters are the server interceptor's job.

Implemented: everything ``scalekit/organization.py``, ``users.py``, ``role.py`` and
``permissions.py`` of SDK 2.21.0 call for environment-level directories and roles, namely

- OrganizationService: CreateOrganization, GetOrganization (by id or external id),
  GetOrganizationByExternalId, ListOrganization, UpdateOrganization, DeleteOrganization,
  UpdateOrganizationSettings;
- UserService: CreateUserAndMembership, GetUser, ListUsers, ListOrganizationUsers, UpdateUser,
  DeleteUser, CreateMembership, UpdateMembership, DeleteMembership, ResendInvite, ListUserRoles,
  ListUserPermissions;
- RolesService: CreateRole, GetRole, ListRoles, UpdateRole, DeleteRole, GetRoleUsersCount,
  UpdateDefaultRoles, ListDependentRoles, DeleteRoleBase, CreatePermission, GetPermission,
  UpdatePermission, ListPermissions, DeletePermission, ListRolePermissions, AddPermissionsToRole,
  RemovePermissionFromRole, ListEffectiveRolePermissions.

Left to the base class, so they answer UNIMPLEMENTED (``ScalekitNotImplementedException`` in the
SDK): portal links (GeneratePortalLink, GetPortalLinks, DeletePortalLink, DeletePortalLinkByID),
UpsertUserManagementSettings, GetOrganizationUserManagementSetting, the session policies
(Get/UpdateOrganizationSessionPolicy, GetApplicationSessionPolicy), Get/UpdateOrganizationBranding,
SearchOrganization, SearchUsers, SearchOrganizationUsers, GetCurrentUser, GetSupportHash,
AssignUserRoles, RemoveUserRole, and all organization-level roles (Create/Get/List/Update/
DeleteOrganizationRole, GetOrganizationRoleUsersCount, UpdateDefaultOrganizationRoles,
DeleteOrganizationRoleBase).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from scalekit.v1.organizations import organizations_pb2, organizations_pb2_grpc
from scalekit.v1.roles import roles_pb2, roles_pb2_grpc
from scalekit.v1.users import users_pb2, users_pb2_grpc

from .directory import Directory
from .errors import EmulatorError, invalid_argument
from .validation import format_violations, validate

Handler = Callable[[Any, Message, grpc.ServicerContext], Message]


def rpc(method: Handler) -> Handler:
    """Validate the request, run the handler, and turn an :class:`EmulatorError` into the
    status it carries (``context.abort`` raises, ending the RPC)."""

    @functools.wraps(method)
    def handler(self: Any, request: Message, context: grpc.ServicerContext) -> Message:
        violations = validate(request)
        try:
            if violations:
                raise invalid_argument(format_violations(violations), violations)
            return method(self, request, context)
        except EmulatorError as exc:
            exc.abort(context)
            raise  # unreachable: abort raises

    return handler


def _identity(request: Message) -> dict[str, str]:
    """The ``identities`` oneof of a request as keyword arguments of the directory."""
    which = request.WhichOneof("identities")
    if which == "external_id":
        return {"external_id": request.external_id}
    if which == "id":
        return {"id": request.id}
    return {}


def _org_identity(request: Message) -> dict[str, str]:
    identity = _identity(request)
    if "id" in identity:
        return {"org_id": identity["id"]}
    return identity


def _user_identity(request: Message) -> dict[str, str]:
    identity = _identity(request)
    if "id" in identity:
        return {"user_id": identity["id"]}
    return identity


def _send_invitation(request: Message) -> bool:
    """``send_invitation_email`` defaults to true when absent (per its description)."""
    return request.send_invitation_email if request.HasField("send_invitation_email") else True


class OrganizationService(organizations_pb2_grpc.OrganizationServiceServicer):
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    @rpc
    def CreateOrganization(
        self, request: organizations_pb2.CreateOrganizationRequest, context: grpc.ServicerContext
    ) -> organizations_pb2.CreateOrganizationResponse:
        org = self.directory.create_organization(request.organization)
        return organizations_pb2.CreateOrganizationResponse(organization=org)

    @rpc
    def GetOrganization(
        self, request: organizations_pb2.GetOrganizationRequest, context: grpc.ServicerContext
    ) -> organizations_pb2.GetOrganizationResponse:
        org = self.directory.require_organization(**_org_identity(request))
        return organizations_pb2.GetOrganizationResponse(organization=org)

    @rpc
    def GetOrganizationByExternalId(
        self, request: organizations_pb2.GetOrganizationRequest, context: grpc.ServicerContext
    ) -> organizations_pb2.GetOrganizationResponse:
        org = self.directory.require_organization(**_org_identity(request))
        return organizations_pb2.GetOrganizationResponse(organization=org)

    @rpc
    def ListOrganization(
        self, request: organizations_pb2.ListOrganizationsRequest, context: grpc.ServicerContext
    ) -> organizations_pb2.ListOrganizationsResponse:
        page = self.directory.list_organizations(
            request.page_size,
            request.page_token,
            request.external_id if request.HasField("external_id") else None,
        )
        return organizations_pb2.ListOrganizationsResponse(
            organizations=page.items,
            next_page_token=page.next_page_token,
            prev_page_token=page.prev_page_token,
            total_size=page.total_size,
        )

    @rpc
    def UpdateOrganization(
        self, request: organizations_pb2.UpdateOrganizationRequest, context: grpc.ServicerContext
    ) -> organizations_pb2.UpdateOrganizationResponse:
        org = self.directory.update_organization(
            request.organization,
            paths=list(request.update_mask.paths) if request.HasField("update_mask") else (),
            **_org_identity(request),
        )
        return organizations_pb2.UpdateOrganizationResponse(organization=org)

    @rpc
    def DeleteOrganization(
        self, request: organizations_pb2.DeleteOrganizationRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self.directory.delete_organization(**_org_identity(request))
        return empty_pb2.Empty()

    @rpc
    def UpdateOrganizationSettings(
        self,
        request: organizations_pb2.UpdateOrganizationSettingsRequest,
        context: grpc.ServicerContext,
    ) -> organizations_pb2.GetOrganizationResponse:
        org = self.directory.update_organization_settings(request.id, request.settings.features)
        return organizations_pb2.GetOrganizationResponse(organization=org)


class UserService(users_pb2_grpc.UserServiceServicer):
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    @rpc
    def CreateUserAndMembership(
        self, request: users_pb2.CreateUserAndMembershipRequest, context: grpc.ServicerContext
    ) -> users_pb2.CreateUserAndMembershipResponse:
        user = self.directory.create_user_and_membership(
            request.organization_id, request.user, _send_invitation(request)
        )
        return users_pb2.CreateUserAndMembershipResponse(user=user)

    @rpc
    def GetUser(
        self, request: users_pb2.GetUserRequest, context: grpc.ServicerContext
    ) -> users_pb2.GetUserResponse:
        user = self.directory.require_user(**_user_identity(request))
        return users_pb2.GetUserResponse(user=user)

    @rpc
    def ListUsers(
        self, request: users_pb2.ListUsersRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListUsersResponse:
        page = self.directory.list_users(request.page_size, request.page_token)
        return users_pb2.ListUsersResponse(
            users=page.items,
            next_page_token=page.next_page_token,
            prev_page_token=page.prev_page_token,
            total_size=page.total_size,
        )

    @rpc
    def ListOrganizationUsers(
        self, request: users_pb2.ListOrganizationUsersRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListOrganizationUsersResponse:
        page = self.directory.list_organization_users(
            request.organization_id, request.page_size, request.page_token
        )
        return users_pb2.ListOrganizationUsersResponse(
            users=page.items,
            next_page_token=page.next_page_token,
            prev_page_token=page.prev_page_token,
            total_size=page.total_size,
        )

    @rpc
    def UpdateUser(
        self, request: users_pb2.UpdateUserRequest, context: grpc.ServicerContext
    ) -> users_pb2.UpdateUserResponse:
        user = self.directory.update_user(request.user, **_user_identity(request))
        return users_pb2.UpdateUserResponse(user=user)

    @rpc
    def DeleteUser(
        self, request: users_pb2.DeleteUserRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self.directory.delete_user(**_user_identity(request))
        return empty_pb2.Empty()

    @rpc
    def CreateMembership(
        self, request: users_pb2.CreateMembershipRequest, context: grpc.ServicerContext
    ) -> users_pb2.CreateMembershipResponse:
        user = self.directory.create_membership(
            request.organization_id,
            request.membership,
            send_invitation_email=_send_invitation(request),
            **_user_identity(request),
        )
        return users_pb2.CreateMembershipResponse(user=user)

    @rpc
    def UpdateMembership(
        self, request: users_pb2.UpdateMembershipRequest, context: grpc.ServicerContext
    ) -> users_pb2.UpdateMembershipResponse:
        user = self.directory.update_membership(
            request.organization_id, request.membership, **_user_identity(request)
        )
        return users_pb2.UpdateMembershipResponse(user=user)

    @rpc
    def DeleteMembership(
        self, request: users_pb2.DeleteMembershipRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self.directory.delete_membership(
            request.organization_id,
            cascade=request.cascade if request.HasField("cascade") else True,
            **_user_identity(request),
        )
        return empty_pb2.Empty()

    @rpc
    def ResendInvite(
        self, request: users_pb2.ResendInviteRequest, context: grpc.ServicerContext
    ) -> users_pb2.ResendInviteResponse:
        invite = self.directory.resend_invite(request.organization_id, request.id)
        return users_pb2.ResendInviteResponse(invite=invite)

    @rpc
    def ListUserRoles(
        self, request: users_pb2.ListUserRolesRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListUserRolesResponse:
        roles = self.directory.list_user_roles(request.organization_id, request.user_id)
        return users_pb2.ListUserRolesResponse(roles=roles)

    @rpc
    def ListUserPermissions(
        self, request: users_pb2.ListUserPermissionsRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListUserPermissionsResponse:
        permissions = self.directory.list_user_permissions(request.organization_id, request.user_id)
        return users_pb2.ListUserPermissionsResponse(permissions=permissions)


class RolesService(roles_pb2_grpc.RolesServiceServicer):
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    @rpc
    def CreateRole(
        self, request: roles_pb2.CreateRoleRequest, context: grpc.ServicerContext
    ) -> roles_pb2.CreateRoleResponse:
        return roles_pb2.CreateRoleResponse(role=self.directory.create_role(request.role))

    @rpc
    def GetRole(
        self, request: roles_pb2.GetRoleRequest, context: grpc.ServicerContext
    ) -> roles_pb2.GetRoleResponse:
        role = self.directory.get_role(request.role_name, request.include)
        return roles_pb2.GetRoleResponse(role=role)

    @rpc
    def ListRoles(
        self, request: roles_pb2.ListRolesRequest, context: grpc.ServicerContext
    ) -> roles_pb2.ListRolesResponse:
        return roles_pb2.ListRolesResponse(roles=self.directory.list_roles(request.include))

    @rpc
    def UpdateRole(
        self, request: roles_pb2.UpdateRoleRequest, context: grpc.ServicerContext
    ) -> roles_pb2.UpdateRoleResponse:
        role = self.directory.update_role(request.role_name, request.role)
        return roles_pb2.UpdateRoleResponse(role=role)

    @rpc
    def DeleteRole(
        self, request: roles_pb2.DeleteRoleRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        reassign = ""
        if request.HasField("reassign_role_name"):
            reassign = request.reassign_role_name
        elif request.HasField("reassign_role_id"):
            reassign = request.reassign_role_id
        self.directory.delete_role(request.role_name, reassign)
        return empty_pb2.Empty()

    @rpc
    def GetRoleUsersCount(
        self, request: roles_pb2.GetRoleUsersCountRequest, context: grpc.ServicerContext
    ) -> roles_pb2.GetRoleUsersCountResponse:
        count = self.directory.role_users_count(request.role_name)
        return roles_pb2.GetRoleUsersCountResponse(count=count)

    @rpc
    def UpdateDefaultRoles(
        self, request: roles_pb2.UpdateDefaultRolesRequest, context: grpc.ServicerContext
    ) -> roles_pb2.UpdateDefaultRolesResponse:
        creator = request.default_creator_role if request.HasField("default_creator_role") else ""
        member = request.default_member_role if request.HasField("default_member_role") else ""
        if not creator and request.HasField("default_creator"):
            creator = request.default_creator.name
        if not member and request.HasField("default_member"):
            member = request.default_member.name
        creator_role, member_role = self.directory.update_default_roles(creator, member)
        return roles_pb2.UpdateDefaultRolesResponse(
            default_creator=creator_role, default_member=member_role
        )

    @rpc
    def ListDependentRoles(
        self, request: roles_pb2.ListDependentRolesRequest, context: grpc.ServicerContext
    ) -> roles_pb2.ListDependentRolesResponse:
        roles = self.directory.list_dependent_roles(request.role_name)
        return roles_pb2.ListDependentRolesResponse(roles=roles)

    @rpc
    def DeleteRoleBase(
        self, request: roles_pb2.DeleteRoleBaseRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self.directory.delete_role_base(request.role_name)
        return empty_pb2.Empty()

    @rpc
    def CreatePermission(
        self, request: roles_pb2.CreatePermissionRequest, context: grpc.ServicerContext
    ) -> roles_pb2.CreatePermissionResponse:
        permission = self.directory.create_permission(request.permission)
        return roles_pb2.CreatePermissionResponse(permission=permission)

    @rpc
    def GetPermission(
        self, request: roles_pb2.GetPermissionRequest, context: grpc.ServicerContext
    ) -> roles_pb2.GetPermissionResponse:
        permission = self.directory.get_permission(request.permission_name)
        return roles_pb2.GetPermissionResponse(permission=permission)

    @rpc
    def UpdatePermission(
        self, request: roles_pb2.UpdatePermissionRequest, context: grpc.ServicerContext
    ) -> roles_pb2.UpdatePermissionResponse:
        permission = self.directory.update_permission(request.permission_name, request.permission)
        return roles_pb2.UpdatePermissionResponse(permission=permission)

    @rpc
    def ListPermissions(
        self, request: roles_pb2.ListPermissionsRequest, context: grpc.ServicerContext
    ) -> roles_pb2.ListPermissionsResponse:
        page = self.directory.list_permissions(request.page_size, request.page_token, request.type)
        return roles_pb2.ListPermissionsResponse(
            permissions=page.items,
            next_page_token=page.next_page_token,
            prev_page_token=page.prev_page_token,
            total_size=page.total_size,
        )

    @rpc
    def DeletePermission(
        self, request: roles_pb2.DeletePermissionRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self.directory.delete_permission(request.permission_name)
        return empty_pb2.Empty()

    @rpc
    def ListRolePermissions(
        self, request: roles_pb2.ListRolePermissionsRequest, context: grpc.ServicerContext
    ) -> roles_pb2.ListRolePermissionsResponse:
        permissions = self.directory.list_role_permissions(request.role_name)
        return roles_pb2.ListRolePermissionsResponse(permissions=permissions)

    @rpc
    def AddPermissionsToRole(
        self, request: roles_pb2.AddPermissionsToRoleRequest, context: grpc.ServicerContext
    ) -> roles_pb2.AddPermissionsToRoleResponse:
        permissions = self.directory.add_permissions_to_role(
            request.role_name, request.permission_names
        )
        return roles_pb2.AddPermissionsToRoleResponse(permissions=permissions)

    @rpc
    def RemovePermissionFromRole(
        self, request: roles_pb2.RemovePermissionFromRoleRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self.directory.remove_permission_from_role(request.role_name, request.permission_name)
        return empty_pb2.Empty()

    @rpc
    def ListEffectiveRolePermissions(
        self, request: roles_pb2.ListEffectiveRolePermissionsRequest, context: grpc.ServicerContext
    ) -> roles_pb2.ListEffectiveRolePermissionsResponse:
        permissions = self.directory.list_effective_role_permissions(request.role_name)
        return roles_pb2.ListEffectiveRolePermissionsResponse(permissions=permissions)


def add_services(server: grpc.Server, directory: Directory) -> None:
    """Register the organization, user and roles services on ``server``."""
    organizations_pb2_grpc.add_OrganizationServiceServicer_to_server(
        OrganizationService(directory), server
    )
    users_pb2_grpc.add_UserServiceServicer_to_server(UserService(directory), server)
    roles_pb2_grpc.add_RolesServiceServicer_to_server(RolesService(directory), server)
