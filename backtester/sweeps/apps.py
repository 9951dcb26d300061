from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "backtester.sweeps"
    label = "sweeps"
    verbose_name = "Parameter sweeps"
    default_auto_field = "django.db.models.BigAutoField"
