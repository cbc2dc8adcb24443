"""The Celery beat task runs every check through the same runner and records the run."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from readiness.models import CheckRun
from readiness.tasks import run_scheduled_checks

pytestmark = pytest.mark.django_db


def test_task_is_registered_under_its_beat_name():
    from config.celery import app

    task = app.tasks["readiness.run_scheduled_checks"]
    assert task.run.__module__ == "readiness.tasks" and task.name == run_scheduled_checks.name


def test_scheduled_run(caplog):
    with override_settings(SESSION_COOKIE_AGE=1209600), caplog.at_level(logging.WARNING):
        result = run_scheduled_checks.apply(kwargs={"network": False}).get()
    run = CheckRun.objects.get(pk=result["run"])
    assert run.trigger == "schedule" and not run.network
    assert "readiness.E011" in result["failing_blockers"]
    assert run.failing_blockers == len(result["failing_blockers"])
    assert f"readiness run #{run.pk}" in caplog.text and "readiness.E011" in caplog.text
