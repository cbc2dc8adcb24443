"""Settings for the test suite: the production settings with test-only environment defaults."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + "x" * 50)
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("SCALEKIT_EMULATOR_APP", "true")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
