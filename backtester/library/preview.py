"""Preview an unsaved strategy: one coin, one range, its price and trades."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from backtester.library.checking import source_text
from backtester.library.selectors import strategy_or_key
from backtester.runs.services import run_coins
from backtester.runs.validation import RISK_FIELDS, RequestError, run_spec
from prices.selectors import bars_load
from strategies.engine import run_many
from strategies.types import Bars

# The key an unsaved source runs under; it never reaches the database.
PREVIEW_KEY = "preview"
# Price points drawn; the trades are always exact.
MAX_POINTS = 4000
# Trades sent back (the most recent ones).
MAX_TRADES = 2000
PREVIEW_FIELDS = {"source", "symbol", "params", "start", "end", "interval", "fee"}


def _iso(epoch: int | float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preview_data(data: dict) -> dict:
    """Return the preview of ``data["source"]`` on ``data["symbol"]``.

    The request is checked as a run's is (RequestError names the field).
    """
    source = source_text(data.get("source"))
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise RequestError("symbol: choose a coin", "symbol")
    unknown = sorted(set(data) - PREVIEW_FIELDS - set(RISK_FIELDS), key=str)
    if unknown:
        raise RequestError(f"{str(unknown[0])[:40]}: unknown field", "source")
    request = {
        k: v for k, v in data.items() if k not in ("source", "symbol") and v != ""
    }
    spec = run_spec(
        {**request, "strategy": PREVIEW_KEY, "symbols": [symbol]},
        sources={PREVIEW_KEY: source},
    )
    (coin,) = run_coins(spec)
    series = bars_load(
        coins=[coin], start=spec.start, end=spec.end, interval=spec.interval
    )[coin.symbol]
    if len(series.time) < 2:
        raise RequestError("start: fewer than two bars in this range", "start")
    strategy = strategy_or_key(PREVIEW_KEY, None, spec.sources)
    ((_, params),) = spec.jobs
    (result,) = run_many(
        Bars(*series),
        [(strategy, params)],
        fee=spec.fee,
        slippage_bps=spec.slippage_bps,
        interval=spec.interval,
        risk=spec.risk,
    )
    n = len(series.time)
    index = np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).round().astype(int))
    table = result.trade_table
    keep = slice(max(0, len(table["entry_time"]) - MAX_TRADES), None)
    trades = {
        "entry_time": [_iso(t) for t in table["entry_time"][keep]],
        "exit_time": [_iso(t) for t in table["exit_time"][keep]],
        "entry_price": np.asarray(table["entry_price"][keep], float).tolist(),
        "exit_price": np.asarray(table["exit_price"][keep], float).tolist(),
        "side": [str(s) for s in table["side"][keep]] if "side" in table else [],
        "return_pct": np.asarray(table["return_pct"][keep], float).tolist(),
    }
    return {
        "symbol": coin.symbol,
        "params": params,
        "bars": n,
        "price": {
            "time": [_iso(t) for t in series.time[index]],
            "close": np.asarray(series.close[index], float).tolist(),
        },
        "trades": trades,
        "metrics": {
            key: result.metrics.get(key)
            for key in (
                "total_return_pct",
                "buy_hold_return_pct",
                "num_trades",
                "win_rate_pct",
                "max_drawdown_pct",
                "sharpe",
            )
        },
    }
