"""Reads for portfolio runs: who may see which, a run's public record, trades."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import QuerySet

from backtester.portfolio.models import PortfolioRun
from backtester.runs.selectors import runs_visible
from backtester.runs.validation import iso
from strategies.portfolio import PortfolioResult

# The trade columns, in the order the exports and the trade list give them.
TRADE_COLUMNS = (
    "symbol", "side", "entry_time", "exit_time", "entry_price", "exit_price",
    "units", "pnl", "return_pct", "exit_reason", "bars_held", "fees",
)  # fmt: skip


def portfolios_list(*, user) -> QuerySet[PortfolioRun]:
    """Return the portfolio runs ``user`` may see (as for runs), newest first."""
    return (
        PortfolioRun.objects.filter(runs_visible(user))
        .defer("curve")
        .order_by("-created_at", "-id")
    )


def portfolio_get(portfolio_id: int, *, user) -> PortfolioRun:
    """Return one run the user may see (PortfolioRun.DoesNotExist otherwise)."""
    return PortfolioRun.objects.filter(runs_visible(user)).get(pk=portfolio_id)


def portfolio_data(run: PortfolioRun) -> dict:
    """Return a run's settings and outcome as the CLI's and exports' ``run``."""
    return {
        "id": run.pk,
        "status": run.status,
        "source": run.source,
        "strategy": run.strategy,
        "params": run.params,
        "symbols": run.symbols,
        "start": iso(run.start),
        "end": iso(run.end),
        "interval": run.interval,
        "fee": run.fee,
        "slippage_bps": run.slippage_bps,
        "max_positions": run.max_positions,
        "rank": run.rank,
        "stop_loss_pct": run.stop_loss_pct,
        "take_profit_pct": run.take_profit_pct,
        "trailing_stop_pct": run.trailing_stop_pct,
        "created_at": iso(run.created_at),
        "elapsed_s": run.elapsed_s,
        "error": run.error,
    }


def _iso_epoch(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trade_rows(result: PortfolioResult) -> list[dict]:
    """Return the result's trades as JSON rows, oldest exit first."""
    trades = result.trades
    columns = {name: trades[name].tolist() for name in TRADE_COLUMNS}
    rows = []
    for i in range(len(columns["symbol"])):
        row = {name: columns[name][i] for name in TRADE_COLUMNS}
        row["entry_time"] = _iso_epoch(row["entry_time"])
        row["exit_time"] = _iso_epoch(row["exit_time"])
        rows.append(row)
    return rows
