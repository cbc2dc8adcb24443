"""The demo site's own pages: a public home page and pages that need a login."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from scalekit_auth.decorators import scalekit_login_required


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@never_cache
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return render(request, "profile.html", {"scalekit": request.scalekit})


@never_cache
@scalekit_login_required
def whoami(request: HttpRequest) -> JsonResponse:
    """Identity only, from the session's claims: no database query."""
    ctx = request.scalekit
    return JsonResponse(
        {"user_id": ctx.user_id, "organization_id": ctx.organization_id, "roles": sorted(ctx.roles)}
    )
