from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("whoami/", views.whoami, name="whoami"),
    path("auth/", include("scalekit_auth.urls")),
    path("admin/", admin.site.urls),
]
