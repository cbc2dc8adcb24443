from __future__ import annotations

from django.apps import AppConfig


class EmulatorConfig(AppConfig):
    """A local stand-in for Scalekit. Installed in development and tests only.

    It imports nothing from the product apps: only the SDK's protobuf modules and its own code.
    """

    name = "scalekit_auth.emulator"
    label = "scalekit_emulator"
    verbose_name = "Scalekit emulator"
