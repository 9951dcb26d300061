"""Parameter sweeps: the sweep, one cell per combination, per-coin metrics.

Per-(combination, coin) metrics are not one row each: a sweep of 174
combinations over 48 coins would be 8,352 rows. They are stored per
(coin, block of combinations) as packed NumPy columns (see fields.py), one row
per unit of work, so storing a finished block twice (a retried task) is one
unique-key conflict and nothing else.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from backtester.runs.fields import ColumnsField

# What a cell reports across coins, in the order tables and exports show it.
CELL_METRICS = (
    "median_return_pct",
    "mean_return_pct",
    "mean_sharpe",
    "beat_buy_hold",
    "median_max_drawdown_pct",
    "trades",
)


class Sweep(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        FAILED = "failed"

    class Source(models.TextChoices):
        WEB = "web"
        CLI = "cli"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sweeps",
    )
    source = models.CharField(max_length=3, choices=Source.choices, default="web")
    strategy = models.CharField(max_length=40)
    # The saved strategy version swept (None: a built-in); kept while a sweep
    # refers to it, so the sweep's cells can always be recomputed.
    strategy_version = models.ForeignKey(
        "library.StrategyVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sweeps",
    )
    # {name: {"start", "stop", "step"} | [values]}, as requested.
    grid = models.JSONField()
    # {name: [values]}: each axis expanded. PostgreSQL's jsonb keeps no key
    # order, so the grid's order (x axis first) is kept in ``axis_names``; read
    # both through ``ordered_axes``.
    axes = models.JSONField(default=dict)
    axis_names = models.JSONField(default=list)
    # Parameters and risk settings fixed for every combination (not on an
    # axis); the strategy's defaults fill in the rest.
    base_params = models.JSONField(default=dict, blank=True)
    # The valid combinations, complete parameter dicts; a cell's ``index`` and a
    # block's ``first`` point into this list.
    combinations = models.JSONField(default=list)
    symbols = models.JSONField(default=list)
    interval = models.CharField(max_length=3, default="1h")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    fee = models.FloatField(default=0.001)
    slippage_bps = models.FloatField(default=0.0)
    objective = models.CharField(max_length=40, default="median_return_pct")
    # How the combinations are split into units of work (see plan.blocks).
    block_first = models.PositiveIntegerField(default=12)
    block_size = models.PositiveIntegerField(default=48)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    skipped = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="Backtests to run.")
    completed = models.PositiveIntegerField(default=0, help_text="Cells finished.")
    best = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    elapsed_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # As for runs: the process driving it, so a dead server's sweep is failed.
    owner = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="sweep_user_idx")
        ]

    def __str__(self) -> str:
        return f"Sweep {self.pk} ({self.strategy}, {self.status})"

    @property
    def ordered_axes(self) -> dict[str, list]:
        """Return the axes in grid order (the first is the heatmap's x axis)."""
        names = self.axis_names or list(self.axes)
        return {name: self.axes[name] for name in names if name in self.axes}

    @property
    def combination_count(self) -> int:
        return len(self.combinations)

    @property
    def is_finished(self) -> bool:
        return self.status in {
            self.Status.COMPLETE,
            self.Status.CANCELLED,
            self.Status.FAILED,
        }


class SweepCell(models.Model):
    """One combination's result across coins; created pending with the sweep."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="cells")
    index = models.PositiveIntegerField()
    params = models.JSONField()
    # The params as canonical JSON (sorted keys): one cell per combination.
    params_key = models.CharField(max_length=500)
    done = models.BooleanField(default=False)
    coins = models.PositiveIntegerField(default=0)
    median_return_pct = models.FloatField(null=True)
    mean_return_pct = models.FloatField(null=True)
    mean_sharpe = models.FloatField(null=True)
    beat_buy_hold = models.PositiveIntegerField(default=0)
    median_max_drawdown_pct = models.FloatField(null=True)
    trades = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sweep", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["sweep", "params_key"], name="sweepcell_params_uniq"
            ),
            models.UniqueConstraint(
                fields=["sweep", "index"], name="sweepcell_index_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"Sweep {self.sweep_id} cell {self.index} {self.params_key}"

    def metrics(self) -> dict:
        """Return the cell's aggregate metrics with its coin count."""
        out = {name: getattr(self, name) for name in CELL_METRICS}
        out["coins"] = self.coins
        return out

    def item(self) -> dict:
        """Return the cell as the executors publish it and an attach replays
        it: ``{index, params, metrics}``."""
        return {"index": self.index, "params": self.params, "metrics": self.metrics()}


class SweepCoinResult(models.Model):
    """One coin's metrics for a block of combinations, as packed columns.

    ``metrics`` holds ``index`` (the combinations' indexes) and one float64
    column per engine metric (NaN where the engine gave None). A coin with no
    bars in range stores ``bars`` 0 and no columns.
    """

    sweep = models.ForeignKey(
        Sweep, on_delete=models.CASCADE, related_name="coin_results"
    )
    symbol = models.CharField(max_length=20)
    # Index of the block's first combination: the unit of work's key.
    first = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    bars = models.PositiveIntegerField(default=0)
    metrics = ColumnsField()

    class Meta:
        ordering = ["sweep", "first", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["sweep", "symbol", "first"], name="sweepcoin_block_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"Sweep {self.sweep_id} {self.symbol} [{self.first}, +{self.size})"


class WalkForwardRun(models.Model):
    """A finished walk-forward: what was asked and what it found, as the page
    showed it (kept so that leaving the page loses nothing)."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="walk_forwards",
    )

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        FAILED = "failed"

    strategy = models.CharField(max_length=40)
    # Computed on a Celery worker, a walk-forward is recorded when it starts
    # (queued) and ended by whoever ends it first: the worker storing its
    # result, or a cancel. On the thread pool it is stored once, complete.
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.COMPLETE
    )
    error = models.TextField(blank=True)
    # The Celery task computing it ("" on the thread pool).
    task_id = models.CharField(max_length=100, blank=True)
    # The request's settings: coins, range, interval, costs, grid, fold sizes.
    settings = models.JSONField(default=dict)
    # The result in the shape of the ``walk_forward_complete`` message.
    result = models.JSONField(default=dict)
    elapsed_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="wf_user_idx")
        ]

    def __str__(self) -> str:
        return f"Walk-forward {self.pk} ({self.strategy})"
