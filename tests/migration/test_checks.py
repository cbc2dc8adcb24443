from __future__ import annotations

import pytest
from django.core import checks as django_checks
from django.test import override_settings

from migration import checks
from migration.conf import AppSettings


def run_checks() -> list[django_checks.CheckMessage]:
    return [
        m for m in django_checks.run_checks(tags=["migration"]) if m.id.startswith("migration.")
    ]


def ids(messages: list[django_checks.CheckMessage]) -> list[str]:
    return [m.id for m in messages]


def test_default_configuration_is_clean():
    with override_settings(MIGRATION={}):
        assert run_checks() == []


def test_settings_must_be_a_dict():
    with override_settings(MIGRATION=["BATCH_SIZE", 10]):
        messages = run_checks()
    assert django_checks.Error(checks.E001, hint=checks.E001_HINT, id="migration.E001") in messages


def test_unknown_keys_are_named():
    with override_settings(MIGRATION={"BATCH_SIZ": 10}):
        messages = run_checks()
    expected = django_checks.Error(
        checks.E002.format(keys="BATCH_SIZ"),
        hint=checks.E002_HINT.format(valid=", ".join(AppSettings.keys())),
        id="migration.E002",
    )
    assert expected in messages


@pytest.mark.parametrize("value", [0, 1001, "100", True, 2.5])
def test_batch_size(value):
    with override_settings(MIGRATION={"BATCH_SIZE": value}):
        messages = run_checks()
    assert messages == [
        django_checks.Error(
            checks.E003.format(value=value), hint=checks.E003_HINT, id="migration.E003"
        )
    ]


def test_concurrency():
    with override_settings(MIGRATION={"CONCURRENCY": 0}):
        assert ids(run_checks()) == ["migration.E004"]


@pytest.mark.parametrize(
    "key,value", [("RATE_LIMIT", 0), ("RATE_LIMIT", "fast"), ("RATE_BURST", 0.5)]
)
def test_rate(key, value):
    with override_settings(MIGRATION={key: value}):
        messages = run_checks()
    assert messages == [
        django_checks.Error(
            checks.E005.format(key=key, value=value), hint=checks.E005_HINT, id="migration.E005"
        )
    ]


@pytest.mark.parametrize(
    "key,value",
    [
        ("MAX_ATTEMPTS", 0),
        ("BACKOFF_BASE_SECONDS", -1),
        ("LEASE_SECONDS", 0),
        ("RATE_LIMITED_PAUSE_SECONDS", "x"),
    ],
)
def test_retry_policy(key, value):
    with override_settings(MIGRATION={key: value}):
        messages = run_checks()
    assert (
        django_checks.Error(
            checks.E006.format(key=key, value=value), hint=checks.E006_HINT, id="migration.E006"
        )
        in messages
    )


def test_backoff_base_above_ceiling():
    with override_settings(MIGRATION={"BACKOFF_BASE_SECONDS": 5, "BACKOFF_MAX_SECONDS": 1}):
        assert ids(run_checks()) == ["migration.E006"]


def test_organization_model_must_exist():
    with override_settings(MIGRATION={"ORGANIZATION_MODEL": "tenants.Tenant"}):
        messages = run_checks()
    assert messages == [
        django_checks.Error(
            checks.E007.format(value="tenants.Tenant"), hint=checks.E007_HINT, id="migration.E007"
        )
    ]


def test_organization_fields_must_exist():
    settings = {
        "ORGANIZATION_MODEL": "auth.Group",
        "ORGANIZATION_NAME_FIELD": "title",
        "ORGANIZATION_MEMBERS_FIELD": "user",
    }
    with override_settings(MIGRATION=settings):
        messages = run_checks()
    assert ids(messages) == ["migration.E008"]
    assert "ORGANIZATION_NAME_FIELD" in messages[0].msg and "auth.Group" in messages[0].msg


def test_organization_members_lookup_must_resolve():
    settings = {"ORGANIZATION_MODEL": "auth.Group", "ORGANIZATION_MEMBERS_FIELD": "members"}
    with override_settings(MIGRATION=settings):
        messages = run_checks()
    assert ids(messages) == ["migration.E008"]
    assert "ORGANIZATION_MEMBERS_FIELD" in messages[0].msg


def test_valid_organization_model_passes():
    settings = {"ORGANIZATION_MODEL": "auth.Group", "ORGANIZATION_MEMBERS_FIELD": "user"}
    with override_settings(MIGRATION=settings):
        assert run_checks() == []


def test_role_source():
    with override_settings(MIGRATION={"ROLE_SOURCE": "permissions"}):
        assert ids(run_checks()) == ["migration.E009"]


@pytest.mark.parametrize("value", ["default", {"display_name": "x"}, {"external_id": " "}])
def test_default_organization(value):
    with override_settings(MIGRATION={"DEFAULT_ORGANIZATION": value}):
        assert run_checks() == [
            django_checks.Error(checks.E010, hint=checks.E010_HINT, id="migration.E010")
        ]


def test_user_external_id_field():
    with override_settings(MIGRATION={"USER_EXTERNAL_ID_FIELD": "legacy_id"}):
        assert ids(run_checks()) == ["migration.E011"]
    with override_settings(MIGRATION={"USER_EXTERNAL_ID_FIELD": "username"}):
        assert run_checks() == []


def test_invitation_email_warns():
    with override_settings(MIGRATION={"SEND_INVITATION_EMAIL": True}):
        assert run_checks() == [
            django_checks.Warning(checks.W001, hint=checks.W001_HINT, id="migration.W001")
        ]


def test_distributed_path_on_sqlite_warns():
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0", MIGRATION={}):
        assert run_checks() == [
            django_checks.Warning(checks.W002, hint=checks.W002_HINT, id="migration.W002")
        ]
    with override_settings(
        REDIS_URL="redis://127.0.0.1:6379/0", CELERY_BROKER_URL="memory://", MIGRATION={}
    ):
        assert run_checks() == []  # REDIS_URL alone is no broker: runs stay in-process


def test_broker_url_other_than_the_celery_apps_is_an_error():
    broker = "redis://:s3cret@broker:6379/0"
    with override_settings(CELERY_BROKER_URL="memory://", MIGRATION={"BROKER_URL": broker}):
        messages = run_checks()
    assert messages == [
        django_checks.Error(checks.E012, hint=checks.E012_HINT, id="migration.E012")
    ]
    assert "s3cret" not in str(messages)
    with override_settings(CELERY_BROKER_URL=broker, MIGRATION={"BROKER_URL": broker}):
        assert ids(run_checks()) == ["migration.W002"]  # the same URL: coherent
    with override_settings(CELERY_BROKER_URL=broker, MIGRATION={"BROKER_URL": ""}):
        assert run_checks() == []  # kept in-process on purpose
