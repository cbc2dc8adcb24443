"""Middleware for the request probes: one that opens CORS to every origin, ones that send a CSP."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class OpenCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "HTTP_ORIGIN" in request.META:
            response["Access-Control-Allow-Origin"] = request.META["HTTP_ORIGIN"]
        return response


class PolicyMiddleware:
    """Sends ``SECURE_CSP`` as a header, as Django 6's ContentSecurityPolicyMiddleware does (Django
    5.2 reads the setting but sends nothing). A response marked ``csp_exempt`` goes without."""

    header = "Content-Security-Policy"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings

        response = self.get_response(request)
        if not getattr(response, "csp_exempt", False):
            response[self.header] = "; ".join(
                f"{directive} {' '.join(sources)}"
                for directive, sources in settings.SECURE_CSP.items()
            )
        return response


class ReportOnlyPolicyMiddleware(PolicyMiddleware):
    header = "Content-Security-Policy-Report-Only"
