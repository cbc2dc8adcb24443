"""The real scalekit_auth URLs plus protected pages for the request probes."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("auth/", include("scalekit_auth.urls")),
    path("admin/", admin.site.urls),
    path("reports/", views.reports, name="reports"),
    path("portal/", views.portal_link, name="portal_link"),
]
