"""factory-boy factories for the rows of ``scalekit_auth`` (and the Django user they link)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from scalekit_auth.models import AuthEvent, RolloutSettings, ScalekitIdentity, WebhookEvent


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@acme.example")
    first_name = "Ada"
    last_name = "Lovelace"
    password = factory.django.Password("correct horse battery staple")


class SuperUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class ScalekitIdentityFactory(DjangoModelFactory):
    class Meta:
        model = ScalekitIdentity

    user = factory.SubFactory(UserFactory)
    scalekit_user_id = factory.Sequence(lambda n: f"usr_{100000 + n}")
    organization_id = "org_acme"
    external_id = factory.LazyAttribute(lambda identity: str(identity.user.pk))
    roles = factory.LazyFunction(lambda: ["member"])
    linked_by = "created"


class RolloutSettingsFactory(DjangoModelFactory):
    """The one rollout row (its primary key is always 1: a second create updates it)."""

    class Meta:
        model = RolloutSettings

    enabled = True
    percentage = 100
    allow_list = ""
    deny_list = ""


class AuthEventFactory(DjangoModelFactory):
    """An auth event; ``created_at=`` backdates it (the field is ``auto_now_add``)."""

    class Meta:
        model = AuthEvent

    kind = AuthEvent.Kind.LOGIN
    success = True
    reason = "hosted login"
    ip_address = "192.0.2.10"

    @classmethod
    def _create(cls, model_class: type[AuthEvent], *args: Any, **kwargs: Any) -> AuthEvent:
        created_at: datetime | None = kwargs.pop("created_at", None)
        event = super()._create(model_class, *args, **kwargs)
        if created_at is not None:
            model_class.objects.filter(pk=event.pk).update(created_at=created_at)
            event.created_at = created_at
        return event


class WebhookEventFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    event_id = factory.Sequence(lambda n: f"evt_{100000 + n}")
    type = "user.organization_membership_updated"
    organization_id = "org_acme"
    outcome = "ignored"
    payload = factory.LazyAttribute(
        lambda event: {"id": event.event_id, "type": event.type, "data": {}}
    )
