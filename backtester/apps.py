from django.apps import AppConfig


class BacktesterConfig(AppConfig):
    name = "backtester"
    verbose_name = "Backtests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backtester import runner, services

        runner.runner_created.connect(
            services.runs_mark_stale_on_start, dispatch_uid="runs_mark_stale_on_start"
        )
