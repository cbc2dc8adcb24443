"""Phase 1 of the migration: what this project's authentication looks like today.

``audit()`` reads settings and counts rows (no network, nothing written) and returns a report
of sections (name -> rows of label/value) plus findings that matter for the import, and the
``SCALEKIT_AUTH`` role settings that keep every user's groups and flags after an import
``--from-database`` (``reporting.cutover_role_settings``).
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import Group, Permission
from django.db.models import Count, Q
from django.db.models.functions import Lower

from .reporting import cutover_role_settings

#: Apps and packages that carry authentication a migration has to account for.
KNOWN_AUTH_APPS = {
    "allauth": "django-allauth (accounts)",
    "allauth.socialaccount": "django-allauth social login",
    "allauth.mfa": "django-allauth MFA",
    "social_django": "python-social-auth",
    "oauth2_provider": "django-oauth-toolkit (OAuth2 provider)",
    "oidc_provider": "django-oidc-provider",
    "mozilla_django_oidc": "mozilla-django-oidc (OIDC login)",
    "djangosaml2": "djangosaml2 (SAML SSO)",
    "django_saml2_auth": "django-saml2-auth (SAML SSO)",
    "rest_framework.authtoken": "DRF token authentication",
    "knox": "django-rest-knox tokens",
    "rest_framework_simplejwt": "DRF SimpleJWT",
    "rest_framework_simplejwt.token_blacklist": "DRF SimpleJWT blacklist",
    "dj_rest_auth": "dj-rest-auth",
    "djoser": "djoser",
    "django_otp": "django-otp (2FA)",
    "two_factor": "django-two-factor-auth",
    "axes": "django-axes (lockout)",
    "guardian": "django-guardian (object permissions)",
    "scalekit_auth": "this project's Scalekit integration",
}
AUTH_MIDDLEWARE_WORDS = ("auth", "session", "csrf", "otp", "axes", "login", "scalekit", "allauth")


@dataclass
class AuditReport:
    sections: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    findings: list[tuple[str, str]] = field(default_factory=list)
    #: ``scalekit_auth_role_settings`` and ``first_login_changes`` (see cutover_role_settings).
    role_settings: dict[str, Any] = field(default_factory=dict)
    role_settings_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "sections": {name: dict(rows) for name, rows in self.sections.items()},
            "findings": [{"level": level, "message": message} for level, message in self.findings],
            **self.role_settings,
        }


def audit() -> AuditReport:
    report = AuditReport()
    user_model_section(report)
    report.sections["authentication backends"] = [
        (str(i), backend) for i, backend in enumerate(settings.AUTHENTICATION_BACKENDS, start=1)
    ]
    report.sections["auth middleware"] = [
        (str(i), name)
        for i, name in enumerate(settings.MIDDLEWARE, start=1)
        if any(word in name.lower() for word in AUTH_MIDDLEWARE_WORDS)
    ]
    report.sections["sessions"] = [
        ("SESSION_ENGINE", settings.SESSION_ENGINE),
        ("SESSION_COOKIE_AGE", settings.SESSION_COOKIE_AGE),
        ("SESSION_COOKIE_SECURE", settings.SESSION_COOKIE_SECURE),
        ("SESSION_EXPIRE_AT_BROWSER_CLOSE", settings.SESSION_EXPIRE_AT_BROWSER_CLOSE),
        ("LOGIN_URL", settings.LOGIN_URL),
        ("LOGIN_REDIRECT_URL", settings.LOGIN_REDIRECT_URL),
        ("LOGOUT_REDIRECT_URL", settings.LOGOUT_REDIRECT_URL),
    ]
    password_section(report)
    groups_section(report)
    apps_section(report)
    role_settings_section(report)
    return report


def role_settings_section(report: AuditReport) -> None:
    report.role_settings, report.role_settings_text, warning = cutover_role_settings()
    if warning:
        report.findings.append(
            ("warning", warning.removeprefix("WARNING: ") + " Set the role settings above.")
        )


def user_model_section(report: AuditReport) -> None:
    user_model = get_user_model()
    manager = user_model._default_manager
    email_field = user_model.get_email_field_name()
    field_names = {f.name for f in user_model._meta.get_fields()}
    total = manager.count()
    rows: list[tuple[str, Any]] = [
        ("AUTH_USER_MODEL", settings.AUTH_USER_MODEL),
        ("custom", user_model._meta.label != "auth.User"),
        ("USERNAME_FIELD", user_model.USERNAME_FIELD),
        ("EMAIL_FIELD", email_field),
        ("users", total),
    ]
    if "is_active" in field_names:
        rows.append(("active", manager.filter(is_active=True).count()))
    if "is_staff" in field_names:
        rows.append(("staff", manager.filter(is_staff=True).count()))
    if "is_superuser" in field_names:
        rows.append(("superusers", manager.filter(is_superuser=True).count()))
    without_email = (
        manager.filter(**{email_field: ""}).count()
        + manager.filter(**{f"{email_field}__isnull": True}).count()
    )
    rows.append(("without email", without_email))
    duplicates = (
        manager.exclude(**{email_field: ""})
        .annotate(normalised=Lower(email_field))
        .values("normalised")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    rows.append(("emails shared by several users (case-insensitive)", duplicates))
    report.sections["user model"] = rows
    if without_email:
        report.findings.append(
            (
                "error",
                f"{without_email} user(s) have no email: Scalekit identifies users by email; they cannot be imported.",
            )
        )
    if duplicates:
        report.findings.append(
            (
                "error",
                f"{duplicates} email address(es) belong to several users (ignoring case): Scalekit allows one user per email; merge them first.",
            )
        )


def password_section(report: AuditReport) -> None:
    user_model = get_user_model()
    algorithms: Counter[str] = Counter()
    if any(f.name == "password" for f in user_model._meta.get_fields()):
        passwords = user_model._default_manager.values_list("password", flat=True)
        for password in passwords.iterator(chunk_size=2000):
            if not password or password.startswith(UNUSABLE_PASSWORD_PREFIX):
                algorithms["(unusable)"] += 1
            else:
                algorithms[password.split("$", 1)[0]] += 1
    report.sections["password hashers"] = [
        (str(i), hasher) for i, hasher in enumerate(settings.PASSWORD_HASHERS, start=1)
    ] + [(f"hashes: {name}", count) for name, count in sorted(algorithms.items())]
    usable = sum(count for name, count in algorithms.items() if name != "(unusable)")
    if usable:
        report.findings.append(
            (
                "warning",
                f"{usable} user(s) have a usable password. Scalekit's API imports no password hashes: "
                "these users sign in through Scalekit (magic link, SSO, or a password reset), or ask "
                "Scalekit for a hash migration.",
            )
        )


def groups_section(report: AuditReport) -> None:
    user_model = get_user_model()
    groups = Group.objects.annotate(
        members=Count("user", distinct=True), perms=Count("permissions", distinct=True)
    )
    rows: list[tuple[str, Any]] = [("groups", groups.count())]
    for group in groups.order_by("name")[:50]:
        rows.append(
            (f"group {group.name!r}", f"{group.members} member(s), {group.perms} permission(s)")
        )
    in_use = Permission.objects.filter(group__isnull=False).distinct().count()
    direct = 0
    if hasattr(user_model, "user_permissions"):
        direct = user_model.user_permissions.through.objects.count()
        in_use = (
            Permission.objects.filter(Q(group__isnull=False) | Q(user__isnull=False))
            .distinct()
            .count()
        )
    rows.append(("permissions in use (via groups or users)", in_use))
    rows.append(("permissions granted to users directly", direct))
    report.sections["groups and permissions"] = rows
    if direct:
        report.findings.append(
            (
                "warning",
                f"{direct} permission grant(s) are made to users directly, not through a group: they do "
                "not become Scalekit roles; move them to groups before exporting.",
            )
        )


def apps_section(report: AuditReport) -> None:
    installed = {config.name for config in apps.get_app_configs()}
    rows = [
        (name, description) for name, description in KNOWN_AUTH_APPS.items() if name in installed
    ]
    rest = getattr(settings, "REST_FRAMEWORK", {}) or {}
    for cls in rest.get("DEFAULT_AUTHENTICATION_CLASSES", []):
        rows.append(("DRF authentication", cls))
    if importlib.util.find_spec("scalekit") is not None:
        rows.append(("scalekit-sdk-python", "installed"))
    report.sections["auth and SSO apps"] = rows or [
        ("(none)", "no social, SSO or token app installed")
    ]
    sso = [name for name in installed if name in KNOWN_AUTH_APPS and name != "scalekit_auth"]
    if sso:
        report.findings.append(
            (
                "info",
                "Installed auth apps to replace or keep beside Scalekit: "
                + ", ".join(sorted(sso))
                + ".",
            )
        )
