"""Settings for the test suite: the production settings with test-only environment defaults."""

import os

os.environ["DJANGO_READ_DOT_ENV"] = "false"

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + "x" * 50)
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("SCALEKIT_EMULATOR_APP", "true")
# Placeholders so the system checks pass; tests that reach Scalekit point these at the emulator.
os.environ.setdefault("SCALEKIT_ENVIRONMENT_URL", "https://scalekit.invalid")
os.environ.setdefault("SCALEKIT_CLIENT_ID", "skc_00000000000000000")
os.environ.setdefault("SCALEKIT_CLIENT_SECRET", "test-secret")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A file, not memory: with in-memory SQLite the live server thread shares the test's connection,
# so transactions are not isolated and end-to-end tests can read half-applied work.
# One file per test process, removed when the run ends.
from .settings import BASE_DIR, DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")
    }
