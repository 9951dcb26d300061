from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Single-coin runs. The label is the project's old app label, so the tables
    (``backtester_backtestrun``, ...) and migrations stay where they are."""

    name = "backtester.runs"
    label = "backtester"
    verbose_name = "Backtests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backtester.execution import pool, registry
        from backtester.runs import services

        # What a run's piece computes and stores, for both executors (execution
        # imports no app; it calls these by name).
        registry.register(
            "run",
            compute="backtester.runs.compute.compute_coin",
            summarize="backtester.runs.summary.summarize",
            spec="backtester.runs.validation.RunSpec",
            store_once="backtester.runs.pieces.results_store_once",
            close="backtester.runs.pieces.run_close",
            stored="backtester.runs.pieces.results_stored",
            rows="backtester.runs.pieces.results_rows",
        )
        pool.runner_created.connect(
            services.runs_mark_stale_on_start, dispatch_uid="runs_mark_stale_on_start"
        )
