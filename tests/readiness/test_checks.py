"""The settings probes as Django system checks: in check --deploy only, as warnings, offline."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core import checks
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from readiness.registry import SETTINGS, get_probe
from scalekit_auth.models import AuthEvent, RolloutSettings

from .helpers import production

pytestmark = pytest.mark.django_db


def readiness_messages(deploy: bool = True) -> list[checks.CheckMessage]:
    return [
        m
        for m in run_checks(include_deployment_checks=deploy)
        if (m.id or "").startswith("readiness.")
    ]


def test_bad_settings_show_as_deploy_warnings():
    with production(SESSION_COOKIE_AGE=1209600, SESSION_COOKIE_NAME="sessionid"):
        messages = {m.id: m for m in readiness_messages()}
    session = messages["readiness.E011"]
    assert session.level == checks.WARNING
    assert session.msg.startswith("[B06 blocker] Session lifetime bounded: SESSION_COOKIE_AGE")
    assert "READINESS['MAX_SESSION_AGE']" in session.hint
    assert messages["readiness.W010"].msg.startswith("[B05 advisory]")


def test_only_settings_probes_and_only_with_deploy():
    with production(SESSION_COOKIE_AGE=1209600, DEBUG=True):
        assert readiness_messages(deploy=False) == []
        ids = {m.id for m in readiness_messages()}
    assert ids and all(get_probe(i).kind == SETTINGS for i in ids)


def test_production_settings_are_clean(monkeypatch):
    from django.test import modify_settings

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", raising=False)
    redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379",
        }
    }
    with (
        production(
            CACHES=redis,
            REST_FRAMEWORK={
                "DEFAULT_AUTHENTICATION_CLASSES": ["scalekit_auth.drf.ScalekitBearerAuthentication"]
            },
        ),
        modify_settings(INSTALLED_APPS={"remove": ["scalekit_auth.emulator"]}),
    ):
        remaining = {m.id for m in readiness_messages()}
    # E022 and W028 hold only while scalekit_auth's admin registers these models.
    assert admin.site.is_registered(RolloutSettings)
    assert admin.site.is_registered(AuthEvent)
    assert remaining == set()


def test_unregistered_kill_switch_shows_in_check_deploy():
    """The clean set above is exact: losing the rollback switch's admin is reported."""
    model_admin = admin.site._registry[RolloutSettings]
    admin.site.unregister(RolloutSettings)
    try:
        with production():
            ids = {m.id for m in readiness_messages()}
    finally:
        admin.site.register(RolloutSettings, type(model_admin))
    assert "readiness.E022" in ids


def test_check_deploy_fails_ci_at_warning_level():
    with production(SESSION_COOKIE_AGE=1209600), pytest.raises(SystemCheckError) as error:
        call_command("check", deploy=True, fail_level="WARNING")
    assert "(readiness.E011)" in str(error.value)


def test_silenced_probe_is_not_reported():
    with production(SESSION_COOKIE_AGE=1209600, SILENCED_SYSTEM_CHECKS=["readiness.E011"]):
        assert "readiness.E011" not in {m.id for m in readiness_messages()}
