"""scalekit_auth's views with a logout that goes on to Scalekit's /oidc/logout (two variants)."""

from __future__ import annotations

from collections.abc import Callable

from django.urls import include, path

from scalekit_auth import urls as real

from . import views


def with_logout(view: Callable) -> list:
    patterns = [p for p in real.urlpatterns if p.name != "logout"]
    patterns.append(path("logout/", view, name="logout"))
    return [path("auth/", include((patterns, "scalekit_auth")))]


urlpatterns = with_logout(views.oidc_logout)
