"""Performance statistics, one small function each, and their assembler.

Undefined values (no trades, no losses, zero volatility, too few bars) are
``None`` rather than NaN or infinity, and every value is a plain Python number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

PERIODS_PER_YEAR = {"1h": 8760, "1d": 365}  # crypto trades around the clock


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Return per-bar simple returns of an equity curve (length n-1)."""
    return equity[1:] / equity[:-1] - 1.0


def total_return_pct(equity: np.ndarray) -> float:
    """Return the whole-period return of the equity curve in percent."""
    return float((equity[-1] / equity[0] - 1.0) * 100.0)


def buy_hold_return_pct(close: np.ndarray) -> float:
    """Return last close over first close, no fees (backtesting.py's convention)."""
    return float((close[-1] / close[0] - 1.0) * 100.0)


def cagr_pct(equity: np.ndarray, periods_per_year: int) -> float | None:
    """Return the compound annual growth rate over (n-1) bar periods."""
    years = (len(equity) - 1) / periods_per_year
    if years <= 0:
        return None
    with np.errstate(over="ignore"):
        try:
            value = ((equity[-1] / equity[0]) ** (1.0 / years) - 1.0) * 100.0
        except OverflowError:
            return None
    return _num(value)


def volatility_ann_pct(
    returns: np.ndarray, periods_per_year: int, std: float | None = None
) -> float | None:
    """Return the annualized sample standard deviation (ddof=1) of bar returns."""
    if len(returns) < 2:
        return None
    std = returns.std(ddof=1) if std is None else std
    return _num(std * math.sqrt(periods_per_year) * 100.0)


def sharpe(
    returns: np.ndarray,
    periods_per_year: int,
    std: float | None = None,
    mean: float | None = None,
) -> float | None:
    """Return mean/std (ddof=1) of bar returns times sqrt(periods); risk-free 0."""
    if len(returns) < 2:
        return None
    std = returns.std(ddof=1) if std is None else std
    if not std > 1e-15:
        return None
    mean = returns.mean() if mean is None else mean
    return _num(mean / std * math.sqrt(periods_per_year))


def sortino(
    returns: np.ndarray, periods_per_year: int, mean: float | None = None
) -> float | None:
    """Return mean return over downside deviation sqrt(mean(min(r, 0)^2)), annual."""
    if len(returns) < 2:
        return None
    losses = np.minimum(returns, 0.0)
    downside = np.sqrt(float((losses * losses).sum()) / len(returns))
    if not downside > 1e-15:
        return None
    mean = returns.mean() if mean is None else mean
    return _num(mean / downside * math.sqrt(periods_per_year))


def drawdown(equity: np.ndarray, peak: np.ndarray | None = None) -> np.ndarray:
    """Return the fractional drawdown from the running peak at each bar (>= 0)."""
    peak = np.maximum.accumulate(equity) if peak is None else peak
    return 1.0 - equity / peak


def max_drawdown_pct(equity: np.ndarray, peak: np.ndarray | None = None) -> float:
    """Return the deepest drawdown as a positive percentage (23.5 means -23.5%)."""
    return float(drawdown(equity, peak).max() * 100.0)


def max_drawdown_duration(equity: np.ndarray, peak: np.ndarray | None = None) -> int:
    """Return the longest run of consecutive bars spent below a previous peak."""
    peak = np.maximum.accumulate(equity) if peak is None else peak
    # For every bar, the index of the latest bar at a peak; the longest stretch
    # since then is the longest drawdown.
    index = np.arange(len(equity))
    last_peak = np.where(equity >= peak, index, 0)
    np.maximum.accumulate(last_peak, out=last_peak)
    return int((index - last_peak).max()) if len(equity) else 0


def calmar(cagr: float | None, max_dd_pct: float) -> float | None:
    """Return CAGR over maximum drawdown (both in percent)."""
    if cagr is None or not max_dd_pct > 1e-12:
        return None
    return _num(cagr / max_dd_pct)


def exposure_pct(position: np.ndarray) -> float:
    """Return the share of bars spent in a position, in percent."""
    return float(position.mean() * 100.0) if len(position) else 0.0


def trade_stats(trades: Mapping[str, np.ndarray]) -> dict:
    """Return win rate, profit factor, expectancy, average/best/worst, duration
    from a trade table (one array per Trade field)."""
    if not len(trades["return_pct"]):
        return {
            "win_rate_pct": None,
            "profit_factor": None,
            "expectancy_pct": None,
            "avg_trade_pct": None,
            "best_trade_pct": None,
            "worst_trade_pct": None,
            "avg_trade_duration": None,
        }
    returns = trades["return_pct"] / 100.0
    # Profit in quote currency: exit proceeds minus entry cost, fees included.
    pnl = (
        trades["units"] * (trades["exit_price"] - trades["entry_price"])
        - trades["fees"]
    )
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {
        "win_rate_pct": float((returns > 0).mean() * 100.0),
        "profit_factor": _num(gains / losses) if losses > 0 else None,
        # Expectancy is the arithmetic mean trade return; the average trade is
        # the geometric mean (as backtesting.py reports them).
        "expectancy_pct": float(returns.mean() * 100.0),
        "avg_trade_pct": _num((np.prod(1.0 + returns) ** (1.0 / len(returns)) - 1.0)
                              * 100.0),
        "best_trade_pct": float(returns.max() * 100.0),
        "worst_trade_pct": float(returns.min() * 100.0),
        "avg_trade_duration": float(trades["bars_held"].mean()),
    }  # fmt: skip


def compute_metrics(
    equity: np.ndarray,
    trades: Mapping[str, np.ndarray],
    position: np.ndarray,
    close: np.ndarray,
    *,
    interval: str = "1h",
) -> dict:
    """Return every metric of one backtest, keyed as documented."""
    periods = PERIODS_PER_YEAR[interval]
    returns = bar_returns(equity)
    mean = float(returns.mean()) if len(returns) else None
    std = None
    if len(returns) >= 2:
        centered = returns - mean
        std = math.sqrt(float((centered * centered).sum()) / (len(returns) - 1))
    peak = np.maximum.accumulate(equity)
    cagr = cagr_pct(equity, periods)
    max_dd = max_drawdown_pct(equity, peak)
    metrics = {
        "total_return_pct": total_return_pct(equity),
        "buy_hold_return_pct": buy_hold_return_pct(close),
        "cagr_pct": cagr,
        "volatility_ann_pct": volatility_ann_pct(returns, periods, std),
        "sharpe": sharpe(returns, periods, std, mean),
        "sortino": sortino(returns, periods, mean),
        "calmar": calmar(cagr, max_dd),
        "max_drawdown_pct": max_dd,
        "max_drawdown_duration": max_drawdown_duration(equity, peak),
        "num_trades": len(trades["return_pct"]),
        **trade_stats(trades),
        "exposure_pct": exposure_pct(position),
        "final_equity": float(equity[-1]),
    }
    return metrics
