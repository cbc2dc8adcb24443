"""Settings of the Celery workers that test lease expiry: a short lease, requeued every second.

The production equivalent is in the README of ``migration`` (a beat entry every minute). The
broker's visibility timeout stays at its default hour: recovery must not depend on it.
"""

from config.test_settings import *  # noqa: F403

MIGRATION = {**MIGRATION, "LEASE_SECONDS": 3}  # noqa: F405
CELERY_BEAT_SCHEDULE = {
    "migration-requeue-expired": {"task": "migration.tasks.requeue_expired", "schedule": 1.0},
}
