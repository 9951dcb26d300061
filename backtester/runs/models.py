"""Backtest runs and their per-(coin, strategy, params) results."""

import hashlib
import json

from django.conf import settings
from django.db import models

from backtester.runs.fields import ColumnsField


class BacktestRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        FAILED = "failed"

    class Source(models.TextChoices):
        WEB = "web"
        CLI = "cli"

    # [{"strategy": key, "params": {...}}, ...] - one entry per strategy run.
    strategies = models.JSONField()
    # The coins actually run (resolved from "all active" at start).
    symbols = models.JSONField(default=list)
    # {symbol: the coin's data_version when the run started}: a result's trades
    # and every bar of its equity are recomputed on demand from these settings,
    # and only while the coin's prices are still the ones the run saw.
    data_versions = models.JSONField(default=dict, blank=True)
    # {key: StrategyVersion id} for each saved strategy the run used, so a
    # replay recomputes that version whatever was edited since; {} when it
    # ran only built-ins.
    strategy_versions = models.JSONField(default=dict, blank=True)
    interval = models.CharField(max_length=3, default="1h")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    fee = models.FloatField(default=0.001)
    slippage_bps = models.FloatField(default=0.0)
    # The risk settings every job of the run used, as Risk.as_dict() gives them
    # (percentages, None for off); {} (runs stored before them) is the default.
    risk = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    source = models.CharField(max_length=3, choices=Source.choices, default="web")
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    elapsed_s = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The process running it ("host:boot id:pid:start", see processes.py) and
    # when that process last reported the run alive: together they tell a run
    # whose server died from one still at work (services.runs_mark_stale).
    owner = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of everything the results depend on (jobs, coins and their data
    # versions, range, interval, costs, risk): an identical request is answered
    # from the newest complete run with the same fingerprint (cache.py).
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    # The run whose stored results this one copied instead of computing.
    cached_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.strategy_label}, {self.status})"

    @property
    def strategy_keys(self) -> list[str]:
        return [item["strategy"] for item in self.strategies]

    @property
    def strategy_label(self) -> str:
        keys = self.strategy_keys
        return keys[0] if len(keys) == 1 else f"{len(keys)} strategies"

    @property
    def is_finished(self) -> bool:
        return self.status in {
            self.Status.COMPLETE,
            self.Status.CANCELLED,
            self.Status.FAILED,
        }


def params_key(params: dict) -> str:
    """Return the identity of a parameter set: a hash of its canonical JSON.

    Keys are sorted and validated values are already int or float, so equal
    parameter sets always give the same key (``{"fast": 10, "slow": 30}`` and
    its reordering alike).
    """
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class BacktestResult(models.Model):
    run = models.ForeignKey(
        BacktestRun, on_delete=models.CASCADE, related_name="results"
    )
    symbol = models.CharField(max_length=20)
    strategy = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    # A result is one (coin, strategy, params) of its run: the same strategy may
    # run with several parameter sets. Set from ``params`` on save.
    params_key = models.CharField(max_length=32, editable=False)
    # The result's number within its run (1..total, in the order results were
    # published): a client that missed one can tell which, and ask for it.
    seq = models.PositiveIntegerField(null=True, blank=True)
    first_bar = models.DateTimeField(null=True)
    last_bar = models.DateTimeField(null=True)
    bars = models.PositiveIntegerField(default=0)
    # Headline metrics as real columns so runs can be sorted and queried in SQL;
    # the full set is in ``metrics``.
    total_return_pct = models.FloatField(null=True)
    buy_hold_return_pct = models.FloatField(null=True)
    sharpe = models.FloatField(null=True)
    max_drawdown_pct = models.FloatField(null=True)
    num_trades = models.PositiveIntegerField(default=0)
    win_rate_pct = models.FloatField(null=True)
    metrics = models.JSONField(default=dict)
    # A preview for lists and exports, as packed NumPy columns (see fields.py): the
    # most recent trades ("entry_time", "exit_time" epoch seconds, "entry_price",
    # "exit_price", "return_pct", "bars_held", "fees", "closed_at_end";
    # ``num_trades`` counts them all) and the equity curve down-sampled to a few
    # hundred points ("time", "strategy", "buy_hold"). Every trade and every bar
    # are recomputed on demand (replay.py).
    trades = ColumnsField()
    equity = ColumnsField()

    class Meta:
        ordering = ["run", "-total_return_pct", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "symbol", "strategy", "params_key"],
                name="result_run_symbol_params_uniq",
            ),
            models.UniqueConstraint(fields=["run", "seq"], name="result_run_seq_uniq"),
        ]

    def __str__(self) -> str:
        ret = "-" if self.total_return_pct is None else f"{self.total_return_pct:+.2f}"
        return f"{self.symbol} {self.strategy} ({ret}%)"

    def save(self, *args, **kwargs) -> None:
        self.params_key = params_key(self.params or {})
        super().save(*args, **kwargs)

    @property
    def excess_return_pct(self) -> float | None:
        if self.total_return_pct is None or self.buy_hold_return_pct is None:
            return None
        return self.total_return_pct - self.buy_hold_return_pct
