from django.apps import AppConfig


class RestoresConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "restores"
    verbose_name = "Disaster recovery"

    def ready(self) -> None:
        from restores.services import logins  # noqa: F401  (connects the audit log's receivers)
