"""The project's Celery app, wired the standard Django way.

The broker comes from ``REDIS_URL`` (see ``config/settings.py``). With no broker configured the
migration app runs its batches in-process with threads, so Celery is only needed for ``--async``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
