"""``ScalekitSessionMiddleware``: keeps a Scalekit-authenticated session's tokens fresh and sets
``request.scalekit``. Place it after ``SessionMiddleware`` and ``AuthenticationMiddleware``.

While the access token is valid, a request costs one read of the session (which
``AuthenticationMiddleware`` reads anyway) and no network call. When it is about to expire, it
is refreshed (once per session across processes, see ``session.py``), after checking that the
Django user is still active. A failed refresh logs the user out: HTML requests are redirected to
the login with ``next``, JSON/XHR requests get 401.
With the rollout's kill switch off, Scalekit sessions end at their next request.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from . import events, rollout, session
from .context import ANONYMOUS, ScalekitContext


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("accept", "")
    return request.headers.get("x-requested-with") == "XMLHttpRequest" or (
        "application/json" in accept and "text/html" not in accept
    )


class ScalekitSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        data = request.session.get(session.SESSION_KEY)
        if data is None:
            request.scalekit = ANONYMOUS
            return self.get_response(request)
        if not rollout.current().enabled:
            return self._end(request, data, "logout", "kill switch: Scalekit sessions ended")
        if session.needs_refresh(data):
            # About once per access token lifetime: the only time this middleware loads the
            # user, so a user deactivated or deleted without a webhook loses the session here.
            if not request.user.is_authenticated:
                return self._end(request, data, "refresh", "the Django user is inactive or gone")
            try:
                fresh = session.refresh(data)
            except session.RefreshFailed as exc:
                return self._end(request, data, "refresh", f"refresh failed: {exc.reason}")
            if fresh is not None:
                data = fresh
                session.store(request, data)
                events.record(
                    "refresh",
                    True,
                    "access token refreshed",
                    request=request,
                    claims=data["claims"],
                )
        request.scalekit = ScalekitContext.from_claims(data["claims"])
        return self.get_response(request)

    def _end(self, request: HttpRequest, data: dict, kind: str, reason: str) -> HttpResponse:
        user = request.user if request.user.is_authenticated else None
        session.forget(request)
        auth_logout(request)
        events.record(kind, False, reason, request=request, user=user, claims=data.get("claims"))
        request.scalekit = ANONYMOUS
        if wants_json(request):
            return JsonResponse(
                {"detail": "Authentication expired; log in again.", "reason": reason}, status=401
            )
        login = reverse("scalekit_auth:login")
        return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
