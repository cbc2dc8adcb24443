"""The app settings of ``migration``: every key of ``settings.MIGRATION`` and its default.

Read them through ``app_settings``::

    from migration.conf import app_settings
    app_settings.BATCH_SIZE

Values are read from ``django.conf.settings`` on every access, so ``override_settings`` works and
nothing is ever written back into ``settings``. Options given to a command (``--batch-size``,
``--rate``...) are stored on the import run and win over these defaults for that run.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

_MISSING = object()


class Setting:
    """One key of ``MIGRATION`` with its default; the docstring documents it."""

    def __init__(self, default: Any, doc: str) -> None:
        self.default = default
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.raw().get(self.name, _MISSING)
        if value is _MISSING:
            return self.default() if callable(self.default) else self.default
        return value


def _project_redis_url() -> str:
    return getattr(settings, "REDIS_URL", "") or ""


def celery_broker_url() -> str:
    """The broker the project's Celery app publishes tasks to (what ``.delay()`` uses): its
    ``broker_write_url``, i.e. ``CELERY_BROKER_WRITE_URL``, else ``CELERY_BROKER_URL``; "" when
    the app has none, or when Celery is not installed."""
    try:
        from celery import current_app
    except ImportError:
        return ""
    url = current_app.conf.broker_write_url or ""
    if isinstance(url, list | tuple):  # a failover list: the first is used first
        url = url[0] if url else ""
    return str(url)


def is_real_broker(url: str) -> bool:
    """A broker other processes can read: not empty, not the in-memory transport."""
    return bool(url) and not url.startswith("memory://")


class AppSettings:
    namespace = "MIGRATION"

    # Work split and pace.
    BATCH_SIZE = Setting(100, "Records per batch (one Celery task, one claim and one bulk write).")
    CONCURRENCY = Setting(
        8,
        "Batches processed at once in-process (threads). With Celery, each worker's own "
        "concurrency applies instead.",
    )
    RATE_LIMIT = Setting(
        20.0,
        "Requests per second to Scalekit, shared by every thread and worker of a run. Scalekit "
        "publishes no number (the limit is per environment and tuned per account): ask them.",
    )
    RATE_BURST = Setting(
        None,
        "Token-bucket size (requests that may go at once); None means a tenth of a second's "
        "worth, which keeps Scalekit's own bucket from running dry under steady load.",
    )

    # Retry policy.
    MAX_ATTEMPTS = Setting(
        5,
        "Attempts per record for transient errors (UNAVAILABLE, timeouts, internal errors) "
        "before it is recorded as failed; `migration_resume` tries failed-transient ones again.",
    )
    BACKOFF_BASE_SECONDS = Setting(0.5, "First retry delay; doubles per attempt, with jitter.")
    BACKOFF_MAX_SECONDS = Setting(30.0, "Ceiling of the retry delay.")
    RATE_LIMITED_PAUSE_SECONDS = Setting(
        2.0,
        "Pause of every worker after a RESOURCE_EXHAUSTED/429 answer that carries no "
        "`retry-after` trailer.",
    )
    RATE_LIMITED_MAX_WAIT_SECONDS = Setting(
        600.0,
        "How long one record may keep being rate limited before it is left for a resume.",
    )
    LEASE_SECONDS = Setting(
        300,
        "A record claimed by a worker that has not finished it within this time is considered "
        "abandoned (the worker died) and is re-checked against Scalekit, then sent again "
        "(live batches, on Celery or in-process, renew their lease every third of it; "
        "`migration.tasks.requeue_expired` requeues expired ones of Celery runs).",
    )

    # What is sent.
    SEND_INVITATION_EMAIL = Setting(
        False, "Send Scalekit's invitation email to imported users. Off: a migration is silent."
    )
    INVITE_UNVERIFIED_EMAILS = Setting(
        False,
        "Send the invitation email to exactly the users whose source row says "
        "email_verified=false (Scalekit marks users created without an invitation as verified).",
    )
    REQUIRE_ROLES = Setting(
        False,
        "Stop before importing when a role named by a membership is missing in Scalekit, "
        "instead of creating it from the source's role definitions.",
    )
    DEFAULT_ORGANIZATION = Setting(
        None,
        'Organization for users that name none, e.g. {"external_id": "default", '
        '"display_name": "Default"}; None makes such rows invalid (Scalekit creates users '
        "inside an organization).",
    )
    DEFAULT_ROLE = Setting(
        "member",
        "Role given to a membership whose row names none, sent explicitly: left to itself "
        "Scalekit makes an organization's first member admin (its default creator role), and "
        "with concurrent workers which user comes first is chance. Must exist in Scalekit or "
        "be defined in the roles source.",
    )

    # The Django-database source (`migration_import --from-database`).
    ORGANIZATION_MODEL = Setting(
        "", 'The tenant model, "app_label.ModelName"; empty: everyone in DEFAULT_ORGANIZATION.'
    )
    ORGANIZATION_EXTERNAL_ID_FIELD = Setting("pk", "Field of the tenant model used as external id.")
    ORGANIZATION_NAME_FIELD = Setting("name", "Field of the tenant model used as display name.")
    ORGANIZATION_MEMBERS_FIELD = Setting(
        "members",
        "Lookup from the tenant model to the user model (a ManyToManyField, or the reverse name "
        "of a ForeignKey on the user), as in Org.objects.filter(<field>__in=users).",
    )
    USER_EXTERNAL_ID_FIELD = Setting(
        "pk",
        "Field of the user model sent as the Scalekit external id: the legacy key that "
        "scalekit_auth links accounts by after the cut-over.",
    )
    ROLE_SOURCE = Setting(
        "groups",
        '"groups": the user\'s Django groups become roles in every membership; "none": no roles '
        "(each membership gets DEFAULT_ROLE).",
    )
    ROLE_PERMISSIONS = Setting(
        False,
        "Export each group's permissions as Scalekit permissions ('app_label:codename'), "
        "created when missing.",
    )

    # Shared rate limiter.
    REDIS_URL = Setting(
        _project_redis_url,
        "Redis for the shared token bucket; defaults to the project's REDIS_URL. Empty: an "
        "in-process bucket (fine for one process).",
    )
    RATE_LIMITER_KEY = Setting("migration:ratelimit", "Redis key prefix of the token bucket.")
    BROKER_URL = Setting(
        None,
        "None: `--async` and the admin's actions use Celery when the project's Celery app has a "
        "real broker (its broker_url, from CELERY_BROKER_URL: not empty, not memory://), and run "
        'in-process on threads otherwise. "": always in-process, even when the project has a '
        "broker. The tasks are always published to the Celery app's broker, so any other value "
        "must be that same URL (migration.E012).",
    )

    @classmethod
    def keys(cls) -> list[str]:
        return [name for name, value in vars(cls).items() if isinstance(value, Setting)]

    def broker_configured(self) -> bool:
        """Whether runs go to Celery workers: the Celery app has a real broker, and
        ``BROKER_URL`` does not keep them in-process."""
        return not self.no_broker_reason()

    def no_broker_reason(self) -> str:
        """Why runs are not sent to Celery ("" when they are), for error messages."""
        if self.BROKER_URL == "":
            return "MIGRATION['BROKER_URL'] is \"\" (imports always run in-process)"
        broker = celery_broker_url()
        if not broker:
            return "the project's Celery app has no broker (set CELERY_BROKER_URL)"
        if not is_real_broker(broker):
            return (
                "the project's Celery app uses the in-memory broker (memory://), which no "
                "worker can read: set CELERY_BROKER_URL to your Redis or RabbitMQ"
            )
        return ""

    def raw(self) -> dict[str, Any]:
        value = getattr(settings, self.namespace, {})
        return value if isinstance(value, dict) else {}


app_settings = AppSettings()
