"""What ``scalekit_auth`` stores: the link between a Django user and its Scalekit identity, the
sessions holding Scalekit tokens, the rollout switch, the auth event log, and the webhook events
already processed."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxValueValidator, MinValueValidator
from django.db import models


class ScalekitIdentity(models.Model):
    """Links one Django user to one Scalekit user (``sub`` of its tokens)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scalekit_identity"
    )
    scalekit_user_id = models.CharField(
        max_length=64, unique=True, help_text="usr_... (the sub claim)"
    )
    organization_id = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="org_... of the last login (the oid claim)",
    )
    external_id = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="The external id in Scalekit (xuid)"
    )
    external_organization_id = models.CharField(max_length=255, blank=True, help_text="xoid")
    roles = models.JSONField(default=list, blank=True, help_text="Roles of the last login")
    linked_by = models.CharField(
        max_length=20,
        choices=[
            ("scalekit_id", "Scalekit user id"),
            ("external_id", "External id"),
            ("email", "Verified email"),
            ("created", "Created at first login"),
        ],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    # What Scalekit's webhooks last applied, so that an older event delivered late (Scalekit
    # retries, and deliveries are not ordered) never overwrites a newer one: one time per kind
    # of state, since an event only carries the state it is about.
    roles_event_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="occurred_at of the last membership event that set the roles",
    )
    status_event_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="occurred_at of the last event that decided whether the user is active",
    )
    profile_event_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="occurred_at of the last event that updated the email or names",
    )
    deactivated_by_event = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="evt_... of the webhook that deactivated the user (no membership left); a "
        "later membership brings them back. Blank when the user was not deactivated by a "
        "webhook, e.g. by an admin: then no webhook reactivates them.",
    )

    class Meta:
        verbose_name = "Scalekit identity"
        verbose_name_plural = "Scalekit identities"

    def __str__(self) -> str:
        return f"{self.user} = {self.scalekit_user_id}"


class ScalekitSession(models.Model):
    """A Django session that holds a user's Scalekit tokens.

    Kept so that every session of a user can be ended at once when the user is deactivated (in
    the admin, or by a Scalekit webhook): the middleware trusts the session's claims without
    loading the user, so a deactivated user's sessions must go, not merely fail a user lookup.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scalekit_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    scalekit_session_id = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="ses_... (the sid claim)"
    )
    access_token_lifetime = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds the access token of the login was valid for (exp - iat): what "
        "Scalekit's session policy gives, checked by the readiness checklist (B17).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "Scalekit session"

    def __str__(self) -> str:
        return f"{self.user} ({self.scalekit_session_id or self.session_key[:8]})"


class RolloutSettings(models.Model):
    """The one row that decides who logs in through Scalekit. Editable in the admin; a change
    takes effect on the next request of every process (after at most ROLLOUT_CACHE_SECONDS)."""

    enabled = models.BooleanField(
        default=True,
        help_text="Kill switch. Off sends every login to the legacy backend and ends Scalekit "
        "sessions at their next request: the documented rollback.",
    )
    percentage = models.PositiveSmallIntegerField(
        default=100,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Share of users (by a stable hash of their email) who log in through Scalekit.",
    )
    allow_list = models.TextField(
        blank=True, help_text="Emails or @domains always sent to Scalekit, one per line."
    )
    deny_list = models.TextField(
        blank=True, help_text="Emails or @domains never sent to Scalekit, one per line (wins)."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "rollout settings"

    def __str__(self) -> str:
        state = f"{self.percentage}%" if self.enabled else "killed"
        return f"Scalekit rollout: {state}"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = {
            field: problems
            for field in ("allow_list", "deny_list")
            if (problems := rollout_entry_problems(getattr(self, field)))
        }
        if errors:
            raise ValidationError(errors)


def rollout_entry_problems(text: str) -> list[str]:
    """What is wrong with the entries of an allow or deny list, one message per bad line.

    The rollout matches an entry against the whole lower-cased email or its ``@domain``, so
    anything else (a bare domain, a wildcard, two entries on one line) would be kept but match
    no one: refused here with the spelling that works.
    """
    email = EmailValidator()
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        where = f"Line {number} ({entry!r})"
        if any(sep in entry for sep in ", ;\t"):
            problems.append(f"{where}: one email or @domain per line, without commas or spaces.")
        elif entry.startswith("*@") or entry.startswith("*."):
            domain = entry.lstrip("*@.")
            problems.append(
                f"{where}: no wildcards; an entry is one email or one exact domain, "
                f"e.g. '@{domain}'."
            )
        elif "@" not in entry and email.validate_domain_part(entry):
            problems.append(
                f"{where} is neither an email nor an @domain: write '@{entry}' for everyone "
                f"at {entry}, or a full email."
            )
        elif "@" not in entry:
            problems.append(f"{where} is neither an email nor an @domain such as '@acme.example'.")
        elif entry.startswith("@"):
            if not email.validate_domain_part(entry[1:]):
                problems.append(f"{where} is not an @domain such as '@acme.example'.")
        else:
            try:
                email(entry)
            except ValidationError:
                problems.append(f"{where} is not a valid email (or @domain).")
    return problems


class AuthEvent(models.Model):
    """One authentication event, for the admin and the monitoring items of the readiness
    checklist. Never holds a token."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        REFRESH = "refresh", "Token refresh"
        LOGOUT = "logout", "Logout"
        WEBHOOK = "webhook", "Webhook"
        BEARER = "bearer", "Bearer token"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    success = models.BooleanField(db_index=True)
    reason = models.CharField(
        max_length=255, blank=True, help_text="Why it failed, or what happened"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scalekit_user_id = models.CharField(max_length=64, blank=True)
    organization_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "success", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {'ok' if self.success else 'failed'}: {self.reason}"


class WebhookEvent(models.Model):
    """A webhook event already received, so a redelivery is acknowledged but not applied twice."""

    event_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    organization_id = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
