from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Event log"
    default_auto_field = "django.db.models.BigAutoField"
