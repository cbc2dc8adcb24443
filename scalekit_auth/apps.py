from django.apps import AppConfig


class ScalekitAuthConfig(AppConfig):
    name = "scalekit_auth"
    verbose_name = "Scalekit authentication"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from . import conf

        setting_changed.connect(conf.reload_settings, dispatch_uid="scalekit_auth.reload_settings")
