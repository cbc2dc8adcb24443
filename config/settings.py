"""Settings for the project, read from the environment (and an optional ``.env``).

Every value that differs between machines comes from an environment variable; ``.env.example``
lists them all. The embedded default is the local Scalekit emulator, SQLite and an in-process
cache, which is what ``make demo`` runs.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The test settings turn this off, so a developer's .env (make demo writes one) cannot change
# what the tests see.
if env.bool("DJANGO_READ_DOT_ENV", default=True) and (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "scalekit_auth",
    "migration",
    "readiness",
]
# The emulator stands in for Scalekit in development and tests; production never installs it.
if env.bool("SCALEKIT_EMULATOR_APP", default=DEBUG):
    INSTALLED_APPS += ["scalekit_auth.emulator", "config"]  # config: the demo_data command

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scalekit_auth.middleware.ScalekitSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "scalekit_auth.backends.ScalekitBackend",
    # The legacy backend stays for users the rollout keeps off Scalekit, and for the rollback.
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "scalekit_auth:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Server-side sessions (tokens never reach the browser), read from the cache first.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Celery: with no REDIS_URL the migration runs in-process (the embedded default).
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than any batch: a message redelivered while its batch still runs takes its records over.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# Scalekit: credentials only from the environment. Every key is documented in scalekit_auth/conf.py.
SCALEKIT_AUTH = {
    "ENVIRONMENT_URL": env("SCALEKIT_ENVIRONMENT_URL", default=""),
    "CLIENT_ID": env("SCALEKIT_CLIENT_ID", default=""),
    "CLIENT_SECRET": env("SCALEKIT_CLIENT_SECRET", default=""),
    "WEBHOOK_SECRET": env("SCALEKIT_WEBHOOK_SECRET", default=""),
    # Extra CA bundle to trust (the emulator's ca.pem); empty for the real service.
    "CA_BUNDLE": env("SCALEKIT_CA_BUNDLE", default=""),
    "REDIRECT_URI": env("SCALEKIT_REDIRECT_URI", default=""),
    "POST_LOGOUT_REDIRECT_URI": env("SCALEKIT_POST_LOGOUT_REDIRECT_URI", default=""),
    # The site's own password login, for the rollout and the rollback (not the admin's: W021).
    "LEGACY_LOGIN_URL": "/accounts/login/",
    "ROLE_GROUPS": {"admin": ["Scalekit admins"], "member": ["Scalekit members"]},
    "STAFF_ROLES": env.list("SCALEKIT_STAFF_ROLES", default=[]),
}

# The import into Scalekit (keys documented in migration/conf.py). Set the rate to what your
# Scalekit environment allows, in requests per second.
MIGRATION = {"RATE_LIMIT": env.float("MIGRATION_RATE_LIMIT", default=20.0)}

# Production readiness (keys documented in readiness/conf.py).
READINESS = {
    "PUBLIC_URL": env("READINESS_PUBLIC_URL", default=""),
    "BEHIND_TLS_PROXY": env.bool("READINESS_BEHIND_TLS_PROXY", default=False),
    "PROTECTED_URLS": [("/profile/", None), ("/whoami/", None)],
}
CELERY_BEAT_SCHEDULE = {
    "readiness-checks": {"task": "readiness.run_scheduled_checks", "schedule": 3600.0},
    "scalekit-auth-purge-events": {"task": "scalekit_auth.purge_events", "schedule": 86400.0},
    "migration-requeue-expired": {"task": "migration.tasks.requeue_expired", "schedule": 60.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="WARNING")},
}
