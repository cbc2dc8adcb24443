"""Scheduled readiness runs (Celery beat), through the same runner as the admin and the command."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="readiness.run_scheduled_checks", ignore_result=True)
def run_scheduled_checks(network: bool = True) -> dict[str, Any]:
    """Run every check, record the run, and log the failing blockers by id (never their evidence)."""
    from .models import CheckRun
    from .runner import run_checks

    report = run_checks(network=network, trigger=CheckRun.Trigger.SCHEDULE)
    failing = [o.probe.id for o in report.failing_blockers]
    if failing:
        logger.warning(
            "readiness run #%s: %d failing blocker(s): %s",
            report.run.pk,
            len(failing),
            ", ".join(failing),
        )
    return {"run": report.run.pk, "failing_blockers": failing, "counts": report.counts()}
