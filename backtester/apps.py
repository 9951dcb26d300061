from django.apps import AppConfig


class BacktesterConfig(AppConfig):
    name = "backtester"
    verbose_name = "Backtests"
    default_auto_field = "django.db.models.BigAutoField"
