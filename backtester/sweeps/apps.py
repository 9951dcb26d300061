from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "backtester.sweeps"
    label = "sweeps"
    verbose_name = "Parameter sweeps"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backtester.execution import registry

        # What a sweep's piece computes and stores, for both executors.
        registry.register(
            "sweep",
            plan="backtester.sweeps.selectors.sweep_plan",
            block_run="backtester.sweeps.services.sweep_block_run",
            pieces_store="backtester.sweeps.services.sweep_pieces_store",
            finish="backtester.sweeps.services.sweep_finish",
            pending_cells="backtester.sweeps.selectors.sweep_pending_cells",
            cell_items="backtester.sweeps.selectors.sweep_cell_items",
        )
