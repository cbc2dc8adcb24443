from __future__ import annotations

import pytest
from django.test import override_settings

from migration.conf import AppSettings, app_settings


def test_defaults_are_documented_and_safe(settings):
    settings.MIGRATION = {}
    assert app_settings.SEND_INVITATION_EMAIL is False
    assert app_settings.BATCH_SIZE == 100
    assert app_settings.REQUIRE_ROLES is False
    names = AppSettings.keys()
    for key in names:
        assert getattr(AppSettings, key).__doc__, f"{key} has no documentation"


def test_override_settings_is_seen_at_once():
    with override_settings(MIGRATION={"BATCH_SIZE": 7, "RATE_LIMIT": 3.5}):
        assert app_settings.BATCH_SIZE == 7
        assert app_settings.RATE_LIMIT == 3.5
    assert app_settings.BATCH_SIZE == 100


def test_redis_url_defaults_to_the_project_setting(settings):
    settings.MIGRATION = {}
    settings.REDIS_URL = "redis://example:6379/3"
    assert app_settings.REDIS_URL == "redis://example:6379/3"
    settings.MIGRATION = {"REDIS_URL": ""}
    assert app_settings.REDIS_URL == ""


def test_nothing_is_written_back_into_settings(settings):
    settings.MIGRATION = {"BATCH_SIZE": 5}
    _ = app_settings.CONCURRENCY
    assert settings.MIGRATION == {"BATCH_SIZE": 5}


def test_broker_is_the_celery_apps_own_and_never_redis_url(settings):
    """``.delay()`` publishes to the Celery app's broker: that alone decides (not REDIS_URL)."""
    from celery import current_app

    settings.MIGRATION = {}
    settings.REDIS_URL = "redis://cache:6379/0"  # a cache or the rate limiter, not a broker
    settings.CELERY_BROKER_URL = "memory://"
    assert current_app.conf.broker_write_url == "memory://"
    assert not app_settings.broker_configured()
    assert "memory://" in app_settings.no_broker_reason()
    settings.CELERY_BROKER_URL = ""
    assert not app_settings.broker_configured()
    settings.CELERY_BROKER_URL = "amqp://rabbit//"
    assert app_settings.broker_configured() and app_settings.no_broker_reason() == ""
    settings.MIGRATION = {"BROKER_URL": ""}  # in-process whatever the project has
    assert not app_settings.broker_configured()
    assert "MIGRATION['BROKER_URL']" in app_settings.no_broker_reason()


@pytest.mark.django_db
def test_async_import_into_the_in_memory_broker_is_refused(migration_settings, command, write):
    """It used to say "queued on Celery" and leave the run running forever (REDIS_URL set)."""
    from migration.models import ImportRun

    organizations = write("orgs.csv", "external_id\nacme\n")
    with override_settings(
        REDIS_URL="redis://127.0.0.1:9/0", CELERY_BROKER_URL="memory://", MIGRATION={}
    ):
        result = command("migration_import", "--organizations", organizations, "--async")
    assert result.code == 2, result
    assert "--async needs a Celery broker" in result.err and "memory://" in result.err
    assert not ImportRun.objects.exists()
