"""System checks for ``settings.MIGRATION``: one function per rule, stable ids ``migration.*``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError

from .conf import AppSettings, app_settings, celery_broker_url
from .validation import ROLE_NAME_RE

E001 = "MIGRATION must be a dict."
E001_HINT = "Set MIGRATION = {...} in your settings, or remove it to use the defaults."
E002 = "MIGRATION has unknown keys: {keys}."
E002_HINT = "Valid keys: {valid}."
E003 = "MIGRATION['BATCH_SIZE'] must be an integer from 1 to 1000, not {value!r}."
E003_HINT = "100 is a good start: one claim and one bulk write per 100 records."
E004 = "MIGRATION['CONCURRENCY'] must be an integer from 1 to 256, not {value!r}."
E004_HINT = "Threads needed to fill the rate limit: about rate x latency (200/s x 0.05 s = 10)."
E005 = "MIGRATION['{key}'] must be a positive number, not {value!r}."
E005_HINT = "RATE_LIMIT is requests per second; RATE_BURST is None or at least 1."
E006 = "MIGRATION['{key}'] is not a valid retry policy value: {value!r}."
E006_HINT = (
    "MAX_ATTEMPTS is an integer >= 1; the *_SECONDS values are numbers >= 0, and "
    "BACKOFF_BASE_SECONDS <= BACKOFF_MAX_SECONDS; LEASE_SECONDS > 0."
)
E007 = "MIGRATION['ORGANIZATION_MODEL'] = {value!r} is not an installed model."
E007_HINT = 'Use "app_label.ModelName" of your tenant model, or leave it empty.'
E008 = "MIGRATION['{key}'] = {value!r} is not a field or lookup of {model}: {error}"
E008_HINT = (
    "ORGANIZATION_EXTERNAL_ID_FIELD and ORGANIZATION_NAME_FIELD name fields of the tenant "
    "model; ORGANIZATION_MEMBERS_FIELD is the lookup from it to the user model."
)
E009 = "MIGRATION['ROLE_SOURCE'] must be 'groups' or 'none', not {value!r}."
E009_HINT = "'groups' maps each Django group to a Scalekit role."
E010 = "MIGRATION['DEFAULT_ORGANIZATION'] must be None or a dict with a non-empty 'external_id'."
E010_HINT = 'For example {"external_id": "default", "display_name": "Default"}.'
E011 = "MIGRATION['USER_EXTERNAL_ID_FIELD'] = {value!r} is not a field of the user model."
E011_HINT = "Use 'pk' (the legacy primary key) or another unique field of the user model."
E012 = "MIGRATION['BROKER_URL'] is not the Celery app's broker: the import tasks never go there."
E012_HINT = (
    "The tasks are published to the project's Celery app broker (CELERY_BROKER_URL). Leave "
    'BROKER_URL out to use it, or set it to "" to keep imports in-process.'
)
E013 = "MIGRATION['DEFAULT_ROLE'] must be a Scalekit role name (^[a-zA-Z0-9_]{{1,64}}$), not {value!r}."
E013_HINT = (
    "The role sent for a membership whose row names none; 'member' is Scalekit's default "
    "member role. Without one Scalekit makes an organization's first member admin."
)
W001 = "MIGRATION['SEND_INVITATION_EMAIL'] is True: every imported user gets an email."
W001_HINT = "A migration is usually silent; set it to False unless you mean to invite everyone."
W002 = "A Celery broker is set (imports run on Celery workers) but the database is SQLite."
W002_HINT = (
    "Several workers writing the import ledger need a real database: set DATABASE_URL to "
    "PostgreSQL for the distributed path. SQLite is fine for one process."
)


def _raw() -> Any:
    return getattr(settings, AppSettings.namespace, {})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_settings_shape(**kwargs: Any) -> list[checks.CheckMessage]:
    raw = _raw()
    if not isinstance(raw, dict):
        return [checks.Error(E001, hint=E001_HINT, id="migration.E001")]
    unknown = sorted(set(raw) - set(AppSettings.keys()))
    if unknown:
        return [
            checks.Error(
                E002.format(keys=", ".join(unknown)),
                hint=E002_HINT.format(valid=", ".join(AppSettings.keys())),
                id="migration.E002",
            )
        ]
    return []


def check_batch_size(**kwargs: Any) -> list[checks.CheckMessage]:
    value = app_settings.BATCH_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        return [checks.Error(E003.format(value=value), hint=E003_HINT, id="migration.E003")]
    return []


def check_concurrency(**kwargs: Any) -> list[checks.CheckMessage]:
    value = app_settings.CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        return [checks.Error(E004.format(value=value), hint=E004_HINT, id="migration.E004")]
    return []


def check_rate(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    rate = app_settings.RATE_LIMIT
    if not _is_number(rate) or rate <= 0:
        errors.append(
            checks.Error(
                E005.format(key="RATE_LIMIT", value=rate), hint=E005_HINT, id="migration.E005"
            )
        )
    burst = app_settings.RATE_BURST
    if burst is not None and (not _is_number(burst) or burst < 1):
        errors.append(
            checks.Error(
                E005.format(key="RATE_BURST", value=burst), hint=E005_HINT, id="migration.E005"
            )
        )
    return errors


def check_retry_policy(**kwargs: Any) -> list[checks.CheckMessage]:
    bad: list[tuple[str, Any]] = []
    attempts = app_settings.MAX_ATTEMPTS
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        bad.append(("MAX_ATTEMPTS", attempts))
    for key in (
        "BACKOFF_BASE_SECONDS",
        "BACKOFF_MAX_SECONDS",
        "RATE_LIMITED_PAUSE_SECONDS",
        "RATE_LIMITED_MAX_WAIT_SECONDS",
    ):
        value = getattr(app_settings, key)
        if not _is_number(value) or value < 0:
            bad.append((key, value))
    base, ceiling = app_settings.BACKOFF_BASE_SECONDS, app_settings.BACKOFF_MAX_SECONDS
    if _is_number(base) and _is_number(ceiling) and base > ceiling:
        bad.append(("BACKOFF_BASE_SECONDS", base))
    lease = app_settings.LEASE_SECONDS
    if not _is_number(lease) or lease <= 0:
        bad.append(("LEASE_SECONDS", lease))
    return [
        checks.Error(E006.format(key=key, value=value), hint=E006_HINT, id="migration.E006")
        for key, value in bad
    ]


def check_organization_model(**kwargs: Any) -> list[checks.CheckMessage]:
    label = app_settings.ORGANIZATION_MODEL
    if not label:
        return []
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError, TypeError):
        return [checks.Error(E007.format(value=label), hint=E007_HINT, id="migration.E007")]
    errors = []
    for key in ("ORGANIZATION_EXTERNAL_ID_FIELD", "ORGANIZATION_NAME_FIELD"):
        name = getattr(app_settings, key)
        if name == "pk":
            continue
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist as exc:
            errors.append(_field_error(key, name, model, exc))
    members = app_settings.ORGANIZATION_MEMBERS_FIELD
    try:
        # Building (not running) a query resolves the lookup path.
        model._default_manager.filter(**{f"{members}__in": []}).query  # noqa: B018
    except (FieldError, FieldDoesNotExist, ValueError, TypeError) as exc:
        errors.append(_field_error("ORGANIZATION_MEMBERS_FIELD", members, model, exc))
    return errors


def _field_error(key: str, value: str, model: type, exc: Exception) -> checks.CheckMessage:
    return checks.Error(
        E008.format(key=key, value=value, model=model._meta.label, error=exc),
        hint=E008_HINT,
        id="migration.E008",
    )


def check_role_source(**kwargs: Any) -> list[checks.CheckMessage]:
    value = app_settings.ROLE_SOURCE
    if value not in ("groups", "none"):
        return [checks.Error(E009.format(value=value), hint=E009_HINT, id="migration.E009")]
    return []


def check_default_organization(**kwargs: Any) -> list[checks.CheckMessage]:
    value = app_settings.DEFAULT_ORGANIZATION
    if value is None:
        return []
    if not isinstance(value, dict) or not str(value.get("external_id") or "").strip():
        return [checks.Error(E010, hint=E010_HINT, id="migration.E010")]
    return []


def check_user_external_id_field(**kwargs: Any) -> list[checks.CheckMessage]:
    name = app_settings.USER_EXTERNAL_ID_FIELD
    if name == "pk":
        return []
    from django.contrib.auth import get_user_model

    try:
        get_user_model()._meta.get_field(name)
    except FieldDoesNotExist:
        return [checks.Error(E011.format(value=name), hint=E011_HINT, id="migration.E011")]
    return []


def check_broker_url(**kwargs: Any) -> list[checks.CheckMessage]:
    value = app_settings.BROKER_URL
    if value is None or value == "" or value == celery_broker_url():
        return []
    return [checks.Error(E012, hint=E012_HINT, id="migration.E012")]  # the URL may hold a password


def check_default_role(**kwargs: Any) -> list[checks.CheckMessage]:
    value = app_settings.DEFAULT_ROLE
    if not isinstance(value, str) or not ROLE_NAME_RE.fullmatch(value):
        return [checks.Error(E013.format(value=value), hint=E013_HINT, id="migration.E013")]
    return []


def check_invitation_email(**kwargs: Any) -> list[checks.CheckMessage]:
    if app_settings.SEND_INVITATION_EMAIL is True:
        return [checks.Warning(W001, hint=W001_HINT, id="migration.W001")]
    return []


def check_distributed_database(
    databases: Iterable[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if not app_settings.broker_configured():
        return []
    engine = settings.DATABASES.get("default", {}).get("ENGINE", "")
    if engine.endswith("sqlite3"):
        return [checks.Warning(W002, hint=W002_HINT, id="migration.W002")]
    return []


ALL_CHECKS = (
    check_settings_shape,
    check_batch_size,
    check_concurrency,
    check_rate,
    check_retry_policy,
    check_organization_model,
    check_role_source,
    check_default_organization,
    check_user_external_id_field,
    check_broker_url,
    check_default_role,
    check_invitation_email,
    check_distributed_database,
)


def register() -> None:
    for check in ALL_CHECKS:
        checks.register(check, "migration")
