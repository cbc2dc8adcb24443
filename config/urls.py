from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("whoami/", views.whoami, name="whoami"),
    path("auth/", include("scalekit_auth.urls")),
    # The legacy password login (SCALEKIT_AUTH['LEGACY_LOGIN_URL']).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("admin/", admin.site.urls),
]
