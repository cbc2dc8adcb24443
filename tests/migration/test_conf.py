from __future__ import annotations

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


def test_broker_comes_from_celery_then_redis_and_not_from_the_rate_limiter(settings):
    settings.CELERY_BROKER_URL = "memory://"
    settings.REDIS_URL = ""
    settings.MIGRATION = {"REDIS_URL": "redis://limiter:6379/0"}  # a shared bucket, no Celery
    assert not app_settings.broker_configured()
    settings.REDIS_URL = "redis://broker:6379/0"
    assert app_settings.broker_configured() and app_settings.BROKER_URL == "redis://broker:6379/0"
    settings.CELERY_BROKER_URL = "amqp://rabbit//"
    assert app_settings.BROKER_URL == "amqp://rabbit//"
    settings.MIGRATION = {"BROKER_URL": ""}  # in-process whatever the project has
    assert not app_settings.broker_configured()
