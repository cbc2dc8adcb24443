"""Function-view decorators that check the caller's Scalekit roles and permissions.

Anonymous callers are sent to the login (HTML) or get 401 (JSON/XHR); authenticated callers
without the role or permission get 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

from .context import ANONYMOUS
from .middleware import wants_json


def _require(test: Callable[[Any], bool]) -> Callable:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            context = getattr(request, "scalekit", ANONYMOUS)
            if not context.is_authenticated:
                if wants_json(request):
                    return JsonResponse({"detail": "Authentication required."}, status=401)
                return redirect_to_login(request.get_full_path())
            if not test(context):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def role_required(*roles: str) -> Callable:
    """The caller must have at least one of ``roles`` in its current organization."""
    return _require(lambda context: context.has_role(*roles))


def permission_required(*permissions: str) -> Callable:
    """The caller must have every one of ``permissions`` (``resource:action``)."""
    return _require(lambda context: context.has_permissions(*permissions))


def scalekit_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The caller must be logged in through Scalekit, read from ``request.scalekit`` alone: no
    database query (Django's ``login_required`` loads ``request.user``). For views that need
    only the caller's identity.

    Not named ``login_required``, so as not to be mistaken for Django's: this one also answers
    JSON and XHR callers with 401 instead of a redirect, and treats a user logged in through
    another backend (the legacy login) as anonymous."""
    return _require(lambda context: True)(view)
