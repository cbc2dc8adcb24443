"""Celery tasks of ``scalekit_auth`` (optional: the app works without Celery)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import events


@shared_task(name="scalekit_auth.purge_events")
def purge_events() -> dict[str, Any]:
    """Delete auth events older than ``EVENT_RETENTION_DAYS`` (scheduled daily in settings)."""
    return events.purge().as_dict()
