"""Settings of the Celery workers that test lease expiry: a short lease, requeued every second.

The production equivalents are in the README of ``migration`` (a beat entry every minute and
the broker's default visibility timeout of an hour).
"""

from config.test_settings import *  # noqa: F403

MIGRATION = {**MIGRATION, "LEASE_SECONDS": 3}  # noqa: F405
CELERY_BEAT_SCHEDULE = {
    "migration-requeue-expired": {"task": "migration.tasks.requeue_expired", "schedule": 1.0},
}
# Messages a killed worker had fetched but not started come back after this (the backstop for
# the moment between fetching a batch and claiming its records).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 20}
