"""A project's own subclass of ``ScalekitBackend``, to list in AUTHENTICATION_BACKENDS in tests."""

from __future__ import annotations

from scalekit_auth.backends import ScalekitBackend

PATH = "tests.scalekit_auth.project_backends.ProjectScalekitBackend"
LEGACY = "django.contrib.auth.backends.ModelBackend"


class ProjectScalekitBackend(ScalekitBackend):
    """What a project writes to add its own rules to the Scalekit login."""
