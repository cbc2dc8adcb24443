"""Organization scoping: the caller's Scalekit organization, and querysets limited to it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .conf import app_settings
from .context import ANONYMOUS, ScalekitContext


def caller(request: Any) -> ScalekitContext:
    """The Scalekit identity of a DRF or Django request (anonymous when there is none).

    For a DRF request it is the bearer token's, or the session's when DRF's
    ``SessionAuthentication`` authenticated the request (and so enforced CSRF). A session cookie
    alone does not make the caller of a view that does not accept session authentication.
    """
    auth = getattr(request, "auth", None)
    if isinstance(auth, ScalekitContext):
        return auth
    django_request = getattr(request, "_request", None)
    if django_request is None:  # a plain Django HttpRequest
        return getattr(request, "scalekit", ANONYMOUS)
    from rest_framework.authentication import SessionAuthentication

    if isinstance(request.successful_authenticator, SessionAuthentication):
        return getattr(django_request, "scalekit", ANONYMOUS)
    return ANONYMOUS


def scope_to_organization(queryset: QuerySet, request: Any, field: str | None = None) -> QuerySet:
    """Only the rows of the caller's organization (none for a caller without one)."""
    organization_id = caller(request).organization_id
    if not organization_id:
        return queryset.none()
    return queryset.filter(**{field or app_settings.ORGANIZATION_FIELD: organization_id})
