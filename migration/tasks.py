"""Celery tasks of the import: plan and queue a run, send one batch, verify a run.

Every task acknowledges late and is rejected (requeued) when its worker process dies, so a
batch whose worker is killed is delivered again; the redelivered task has the same id and takes
back the records it had claimed, re-checking each against Scalekit before sending it again.
Records of a worker killed outright (SIGKILL, a lost machine) stay claimed until their lease
expires; the periodic ``migration.requeue_expired`` task (Celery beat) then queues them again,
without waiting for the broker's visibility timeout or a ``migration_resume``.
"""

from __future__ import annotations

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured
from scalekit.common.exceptions import ScalekitException

from . import runner
from .batches import run_batch, stop_run

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(bind=True, name="migration.start_run", **TASK_OPTIONS)
def start_run(self, run_id: int) -> None:
    runner.begin_async(run_id)


@shared_task(bind=True, name="migration.process_batch", **TASK_OPTIONS)
def process_batch(self, run_id: int, kind: str, lo: int, hi: int) -> dict:
    try:
        result = run_batch(run_id, kind, lo, hi, token=self.request.id)
    except (ImproperlyConfigured, ScalekitException) as exc:
        # No client, so nothing was claimed: stop the run, say why; resume after fixing it.
        stop_run(run_id, runner.client_error(exc))
        return {"claimed": 0, "succeeded": 0, "failed": 0}
    runner.advance(run_id, kind)
    return {"claimed": result.claimed, "succeeded": result.succeeded, "failed": result.failed}


@shared_task(bind=True, name="migration.verify_run", **TASK_OPTIONS)
def verify_run(self, run_id: int) -> None:
    """Verify the run; a failure is logged and written on the run's message (as in-process)."""
    runner.verify_or_record_failure(run_id)


@shared_task(name="migration.tasks.requeue_expired", ignore_result=True)
def requeue_expired() -> dict[int, int]:
    """Beat task: queue again the in-flight records of Celery runs whose lease expired."""
    return runner.requeue_expired()
