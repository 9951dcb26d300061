from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "backtester.portfolio"
    label = "portfolio"
    verbose_name = "Portfolio runs"
    default_auto_field = "django.db.models.BigAutoField"
