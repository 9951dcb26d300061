"""A portfolio run: one strategy over a basket of coins from one account.

Its trades are not stored: they are recomputed on demand from the stored
settings and the coins' bars (replay.py), as a single-coin result's are. What
is stored is what the pages show at once: the metrics, each coin's
contribution and a chart-sized curve (at most 2,000 points, extremes kept).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from backtester.runs.fields import ColumnsField


class PortfolioRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        FAILED = "failed"

    class Source(models.TextChoices):
        WEB = "web"
        CLI = "cli"

    class Rank(models.TextChoices):
        SYMBOL = "symbol"
        ROC_24 = "roc_24", "roc_24 (highest 24-bar change first)"
        RSI_14 = "rsi_14", "rsi_14 (lowest RSI first)"
        VOLUME_24 = "volume_24", "volume_24 (highest 24-bar quote volume first)"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="portfolio_runs",
    )
    source = models.CharField(max_length=3, choices=Source.choices, default="web")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    strategy = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True)
    symbols = models.JSONField(default=list)
    # Each coin's data version when the run started: a replay refuses when
    # the bars changed since.
    data_versions = models.JSONField(default=dict, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    interval = models.CharField(max_length=3, default="1h")
    fee = models.FloatField(default=0.001)
    slippage_bps = models.FloatField(default=0.0)
    max_positions = models.PositiveSmallIntegerField(default=5)
    rank = models.CharField(max_length=10, choices=Rank.choices, default="symbol")
    stop_loss_pct = models.FloatField(null=True, blank=True)
    take_profit_pct = models.FloatField(null=True, blank=True)
    trailing_stop_pct = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(null=True, blank=True)
    contributions = models.JSONField(null=True, blank=True)
    # time (epoch ms), equity, benchmark, drawdown_pct, positions: the
    # account's curve at chart resolution.
    curve = ColumnsField(blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Coins.")
    completed = models.PositiveIntegerField(
        default=0, help_text="Coins whose signals were ready."
    )
    error = models.TextField(blank=True)
    elapsed_s = models.FloatField(null=True, blank=True)
    # The server process computing it (runs/processes.py), to fail it when
    # that process is gone.
    owner = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_by", "-created_at"], name="portfolio_owner_new_idx"
            )
        ]

    def __str__(self) -> str:
        return f"Portfolio #{self.pk} {self.strategy} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (
            self.Status.COMPLETE, self.Status.CANCELLED, self.Status.FAILED
        )  # fmt: skip

    @property
    def risk(self) -> dict:
        """Return the stop, target and trailing stop as a risk mapping."""
        return {
            name: getattr(self, name)
            for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct")
            if getattr(self, name) is not None
        }


class PortfolioSweep(models.Model):
    """A grid of portfolio runs over one basket: each combination (strategy
    parameters, stops, ``max_positions``) one account pass, stored as a cell."""

    Status = PortfolioRun.Status
    Rank = PortfolioRun.Rank

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="portfolio_sweeps",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    strategy = models.CharField(max_length=40)
    # {name: {"start", "stop", "step"} | [values]}, as requested.
    grid = models.JSONField()
    # {name: [values]} expanded; jsonb keeps no key order, so the grid's order
    # (x axis first) is kept in ``axis_names``.
    axes = models.JSONField(default=dict)
    axis_names = models.JSONField(default=list)
    # Settings fixed for every combination (not on an axis).
    base_params = models.JSONField(default=dict, blank=True)
    # The valid combinations; a cell's ``index`` points into this list.
    combinations = models.JSONField(default=list)
    symbols = models.JSONField(default=list)
    data_versions = models.JSONField(default=dict, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    interval = models.CharField(max_length=3, default="1h")
    fee = models.FloatField(default=0.001)
    slippage_bps = models.FloatField(default=0.0)
    rank = models.CharField(max_length=10, choices=Rank.choices, default="symbol")
    objective = models.CharField(max_length=40, default="total_return_pct")
    skipped = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0, help_text="Cells finished.")
    best = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    elapsed_s = models.FloatField(null=True, blank=True)
    owner = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_by", "-created_at"], name="psweep_owner_new_idx"
            )
        ]

    def __str__(self) -> str:
        return f"Portfolio sweep #{self.pk} {self.strategy} ({self.status})"

    @property
    def ordered_axes(self) -> dict[str, list]:
        """Return the axes in grid order (the first is the heatmap's x axis)."""
        names = self.axis_names or list(self.axes)
        return {name: self.axes[name] for name in names if name in self.axes}

    @property
    def is_finished(self) -> bool:
        return self.status in (
            self.Status.COMPLETE, self.Status.CANCELLED, self.Status.FAILED
        )  # fmt: skip


class PortfolioSweepCell(models.Model):
    """One combination's portfolio metrics, stored when its pass finishes."""

    sweep = models.ForeignKey(
        PortfolioSweep, on_delete=models.CASCADE, related_name="cells"
    )
    index = models.PositiveIntegerField()
    params = models.JSONField()
    # The account's metric set (runs' single-coin set plus the portfolio's).
    metrics = models.JSONField()

    class Meta:
        ordering = ["sweep", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["sweep", "index"], name="psweepcell_index_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"Portfolio sweep {self.sweep_id} cell {self.index}"

    def item(self) -> dict:
        """Return the cell as published: ``{index, params, metrics}``."""
        return {"index": self.index, "params": self.params, "metrics": self.metrics}
