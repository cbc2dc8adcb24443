"""Purpose-built views for the request probes: correct ones, and ones with the flaws to catch."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.cache import never_cache

ENV = "https://acme.scalekit.com"


@never_cache
@login_required
@permission_required("readiness.view_checkrun", raise_exception=True)
def reports(request: HttpRequest) -> HttpResponse:
    return HttpResponse("reports")


@login_required
def cacheable_profile(request: HttpRequest) -> HttpResponse:
    return HttpResponse("profile")


def public_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("anyone")


@never_cache
@login_required
def members_only(request: HttpRequest) -> HttpResponse:
    """Needs a login but checks no permission: a user without it still gets 200."""
    return HttpResponse("members")


@staff_member_required
def portal_link(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"link": f"{ENV}/magicLink/portal"})


def leaky_portal_link(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"link": f"{ENV}/magicLink/portal"})


# --- A flawed scalekit_auth, mounted under the same namespace by urls_bad --------------------


def bad_login(request: HttpRequest) -> HttpResponse:
    request.session["next"] = request.GET.get("next", "/")
    return HttpResponseRedirect(
        f"{ENV}/oauth/authorize?response_type=code&state=abc123&redirect_uri=https://elsewhere.example/cb"
    )


def bad_callback(request: HttpRequest) -> HttpResponse:
    request.session["access_token"] = "eyJ-not-checked"
    return HttpResponseRedirect("/")


def bad_logout(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("https://evil.invalid/after-logout")


def bad_webhook(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


def exchanging_callback(request: HttpRequest) -> HttpResponse:
    """Sends whatever code arrives to Scalekit without looking at the state."""
    from scalekit.common.exceptions import ScalekitException

    from scalekit_auth.client import token_request

    try:
        token_request(
            {
                "grant_type": "authorization_code",
                "code": request.GET.get("code", ""),
                "redirect_uri": "https://app.example.com/auth/callback/",
            }
        )
    except ScalekitException:
        return HttpResponse("invalid code", status=400)
    return HttpResponseRedirect("/")


def _oidc_logout(request: HttpRequest, post_logout: str) -> HttpResponse:
    from django.contrib.auth import logout
    from django.views.decorators.http import require_POST

    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        logout(request)
        return HttpResponseRedirect(
            f"{ENV}/oidc/logout?id_token_hint=x&post_logout_redirect_uri={post_logout}"
        )

    return view(request)


def oidc_logout(request: HttpRequest) -> HttpResponse:
    return _oidc_logout(request, "https://app.example.com/")


def oidc_logout_to_http(request: HttpRequest) -> HttpResponse:
    return _oidc_logout(request, "http://app.example.com/")


@never_cache
@login_required
def unprotected_by_csp(request: HttpRequest) -> HttpResponse:
    """A page that opts out of the project's Content-Security-Policy (as django-csp's
    ``@csp_exempt`` does)."""
    response = HttpResponse("no policy here")
    response.csp_exempt = True
    return response


def crashing_login(request: HttpRequest) -> HttpResponse:
    """Fails the way a misconfigured login does, quoting a secret in its message."""
    from django.conf import settings

    secret = settings.SCALEKIT_AUTH["CLIENT_SECRET"]
    raise LookupError(f"no Scalekit client for secret {secret}: the settings are incomplete")
