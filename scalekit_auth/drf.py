"""Django REST framework integration: bearer authentication with Scalekit access tokens,
permission classes for roles and permissions, and organization scoping of querysets.

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
        "scalekit_auth.drf.ScalekitBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ]}

    class InvoiceViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
        permission_classes = [HasRole("finance", "admin")]
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from rest_framework import authentication, exceptions, permissions

from . import events, rollout, tokens
from .backends import LinkRefused, resolve_user
from .context import ScalekitContext
from .organizations import caller, scope_to_organization


class ScalekitBearerAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <Scalekit access token>``.

    ``request.user`` is the linked Django user (linked or created at first use, by the same
    policy as the login); ``request.auth`` and ``request.scalekit`` are the token's
    ``ScalekitContext``. A verified token is remembered by its hash until it expires. With the
    rollout's kill switch off (the rollback), every bearer token is refused, as every Scalekit
    session ends.
    """

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ScalekitContext] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Bearer <token>'."
            )
        if not rollout.current().enabled:
            events.record("bearer", False, "kill switch", request=request._request)
            raise exceptions.AuthenticationFailed(
                "Scalekit sign-in is switched off on this site (rollback)."
            )
        try:
            claims = tokens.verify_bearer(header[1].decode("ascii"))
        except (UnicodeDecodeError, tokens.TokenError) as exc:
            reason = exc.reason if isinstance(exc, tokens.TokenError) else "malformed"
            events.record("bearer", False, f"token refused: {reason}", request=request._request)
            raise exceptions.AuthenticationFailed(f"Invalid token ({reason}).") from exc
        context = ScalekitContext.from_claims(claims)
        user = self._user(claims)
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("No active user for this token.")
        request._request.scalekit = context
        return user, context

    def _user(self, claims: dict[str, Any]) -> Any:
        users = get_user_model()._default_manager
        try:
            return users.get(scalekit_identity__scalekit_user_id=claims["sub"])
        except ObjectDoesNotExist:
            pass
        try:
            return resolve_user(claims)
        except LinkRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc

    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'


class _ScalekitPermission(permissions.BasePermission):
    required: tuple[str, ...] = ()

    def allowed(self, context: ScalekitContext) -> bool:
        raise NotImplementedError

    def has_permission(self, request: Any, view: Any) -> bool:
        context = caller(request)
        return context.is_authenticated and self.allowed(context)


def HasRole(*roles: str) -> type[permissions.BasePermission]:  # noqa: N802 (used like a class)
    """A permission class: the caller has at least one of ``roles``."""
    return type(
        f"HasRole({', '.join(roles)})",
        (_ScalekitPermission,),
        {
            "required": roles,
            "allowed": lambda self, context: context.has_role(*self.required),
            "message": f"One of these roles is required: {', '.join(roles)}.",
        },
    )


def HasPermission(*perms: str) -> type[permissions.BasePermission]:  # noqa: N802
    """A permission class: the caller has every one of ``perms``."""
    return type(
        f"HasPermission({', '.join(perms)})",
        (_ScalekitPermission,),
        {
            "required": perms,
            "allowed": lambda self, context: context.has_permissions(*self.required),
            "message": f"These permissions are required: {', '.join(perms)}.",
        },
    )


class OrganizationScopedMixin:
    """For generic views and viewsets: ``get_queryset`` limited to the caller's organization."""

    organization_field: str | None = None

    def get_queryset(self) -> QuerySet:
        return scope_to_organization(super().get_queryset(), self.request, self.organization_field)
