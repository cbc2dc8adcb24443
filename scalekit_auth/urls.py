from __future__ import annotations

from django.urls import path

from . import views, webhooks

app_name = "scalekit_auth"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("logout/", views.logout, name="logout"),
    path("webhooks/", webhooks.receive, name="webhook"),
]
