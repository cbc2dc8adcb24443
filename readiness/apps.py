from __future__ import annotations

from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "readiness"
    verbose_name = "Production readiness"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.checks import register

        from . import checks

        register(checks.settings_probe_messages, checks.TAG, deploy=True)
