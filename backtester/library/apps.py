from django.apps import AppConfig


class LibraryConfig(AppConfig):
    """Saved strategies: rule-language sources kept as immutable versions."""

    name = "backtester.library"
    label = "library"
    verbose_name = "Saved strategies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backtester.library import modules

        # Web processes and Celery workers both load the app registry, so the
        # Python strategies of BACKTEST_STRATEGY_MODULES exist in each.
        modules.load_configured()
