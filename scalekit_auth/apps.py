from __future__ import annotations

from django.apps import AppConfig


class ScalekitAuthConfig(AppConfig):
    name = "scalekit_auth"
    verbose_name = "Scalekit authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.checks import register
        from django.core.signals import setting_changed
        from django.db.models.signals import post_delete, post_save

        from . import checks, conf, events, rollout, session, webhooks
        from .models import RolloutSettings

        setting_changed.connect(conf.reload_settings, dispatch_uid="scalekit_auth.reload_settings")
        setting_changed.connect(
            events.forget_throttle, dispatch_uid="scalekit_auth.events.forget_throttle"
        )
        post_save.connect(
            rollout.forget, sender=RolloutSettings, dispatch_uid="scalekit_auth.rollout.saved"
        )
        post_delete.connect(
            rollout.forget, sender=RolloutSettings, dispatch_uid="scalekit_auth.rollout.deleted"
        )
        post_save.connect(
            session.end_sessions_of_inactive_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="scalekit_auth.session.user_saved",
        )
        post_save.connect(
            webhooks.forget_webhook_deactivation,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="scalekit_auth.webhooks.user_saved",
        )
        for check in checks.ALL:
            register(check, "scalekit_auth")
        for check in checks.DEPLOY:
            register(check, "scalekit_auth", deploy=True)
