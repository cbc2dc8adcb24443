"""A test-only URLconf: the scalekit_auth views, small DRF views and decorated function views.

Used with ``@pytest.mark.urls("tests.scalekit_auth.urls")``. The login views live under
``/auth/`` as in the project, so the login helpers of ``conftest.py`` work unchanged.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework import generics, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scalekit_auth.decorators import permission_required, role_required
from scalekit_auth.drf import (
    HasPermission,
    HasRole,
    OrganizationScopedMixin,
    ScalekitBearerAuthentication,
)
from scalekit_auth.models import ScalekitIdentity
from scalekit_auth.organizations import caller


class Me(APIView):
    """Who the bearer token says the caller is, as Django and as Scalekit."""

    authentication_classes = [ScalekitBearerAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        context = caller(request)
        return Response(
            {
                "user_pk": request.user.pk,
                "username": request.user.get_username(),
                "scalekit_user_id": context.user_id,
                "organization_id": context.organization_id,
                "roles": sorted(context.roles),
                "permissions": sorted(context.permissions),
                # The authentication class also sets it on the Django request.
                "same_context": request._request.scalekit is request.auth,
            }
        )


class BearerOrSession(APIView):
    """Both kinds of caller: the permission classes read whichever identity authenticated."""

    authentication_classes = [ScalekitBearerAuthentication, SessionAuthentication]

    def get(self, request: Request) -> Response:
        return Response({"user_pk": request.user.pk, "roles": sorted(caller(request).roles)})


class FinanceReport(BearerOrSession):
    permission_classes = [HasRole("finance", "admin")]

    def post(self, request: Request) -> Response:
        return Response({"posted": True})


class BearerOnlyAdmin(APIView):
    """Accepts bearer tokens only: a browser's session cookie must not make a caller here."""

    authentication_classes = [ScalekitBearerAuthentication]
    permission_classes = [HasRole("admin")]

    def get(self, request: Request) -> Response:
        return Response({"user_pk": request.user.pk})

    def post(self, request: Request) -> Response:
        return Response({"posted": True})


class InvoiceList(BearerOrSession):
    permission_classes = [HasPermission("invoices:read")]


class InvoiceWrite(BearerOrSession):
    permission_classes = [HasPermission("invoices:read", "invoices:write")]


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = ScalekitIdentity
        fields = ["scalekit_user_id", "organization_id"]


class OrganizationIdentities(OrganizationScopedMixin, generics.ListAPIView):
    """The linked identities of the caller's organization (default ``ORGANIZATION_FIELD``)."""

    authentication_classes = [ScalekitBearerAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = IdentitySerializer
    queryset = ScalekitIdentity.objects.order_by("scalekit_user_id")
    pagination_class = None


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username"]


class OrganizationUsers(OrganizationScopedMixin, generics.ListAPIView):
    """Django users of the caller's organization, through a field name override."""

    authentication_classes = [ScalekitBearerAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = UserSerializer
    queryset = get_user_model().objects.order_by("pk")
    organization_field = "scalekit_identity__organization_id"
    pagination_class = None


@role_required("admin")
def admin_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"admin page for {request.scalekit.user_id}")


@permission_required("invoices:read")
def invoices_page(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"invoices": [], "organization_id": request.scalekit.organization_id})


@permission_required("invoices:read", "invoices:write")
def invoice_editor(request: HttpRequest) -> HttpResponse:
    return HttpResponse("editor")


urlpatterns = [
    path("auth/", include("scalekit_auth.urls")),
    path("api/me/", Me.as_view()),
    path("api/finance/", FinanceReport.as_view()),
    path("api/bearer-only/", BearerOnlyAdmin.as_view()),
    path("api/invoices/", InvoiceList.as_view()),
    path("api/invoices/write/", InvoiceWrite.as_view()),
    path("api/identities/", OrganizationIdentities.as_view()),
    path("api/users/", OrganizationUsers.as_view()),
    path("pages/admin/", admin_page),
    path("pages/invoices/", invoices_page),
    path("pages/invoices/edit/", invoice_editor),
]
