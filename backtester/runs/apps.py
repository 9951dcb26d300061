from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Single-coin runs. The label is the project's old app label, so the tables
    (``backtester_backtestrun``, ...) and migrations stay where they are."""

    name = "backtester.runs"
    label = "backtester"
    verbose_name = "Backtests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backtester.runs import runner, services

        runner.runner_created.connect(
            services.runs_mark_stale_on_start, dispatch_uid="runs_mark_stale_on_start"
        )
