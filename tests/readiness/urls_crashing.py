"""A project whose login view crashes: a 500 the request probes must explain."""

from django.urls import include, path

from . import views

crashing_auth = ([path("login/", views.crashing_login, name="login")], "scalekit_auth")

urlpatterns = [path("auth/", include(crashing_auth))]
