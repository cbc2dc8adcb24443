"""A project whose scalekit_auth views have the flaws the request probes look for."""

from django.contrib import admin
from django.urls import include, path

from . import views

bad_auth = (
    [
        path("login/", views.bad_login, name="login"),
        path("callback/", views.bad_callback, name="callback"),
        path("logout/", views.bad_logout, name="logout"),
        path("webhooks/", views.bad_webhook, name="webhook"),
    ],
    "scalekit_auth",
)

urlpatterns = [
    path("auth/", include(bad_auth)),
    path("admin/", admin.site.urls),
    path("profile/", views.cacheable_profile),
    path("public/", views.public_page),
    path("members/", views.members_only),
    path("no-csp/", views.unprotected_by_csp),
    path("portal/", views.leaky_portal_link, name="portal_link"),
]
