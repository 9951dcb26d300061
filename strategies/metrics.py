"""Performance statistics, one small function each, and their assembler.

Conventions (where tools differ, the choice is stated at the function):
per-bar simple returns of the equity curve, risk-free rate 0. Everything
annualized counts calendar time, not bars: a range spans its first bar's open
to its last bar's open plus one interval, in years of 365 days (crypto trades
around the clock), and per-bar figures are annualized at the bars a calendar
year actually holds in that range (``PERIODS_PER_YEAR`` without gaps, fewer
with them). Undefined values (no trades, no losses, zero volatility, a CAGR
over less than 30 days) are ``None`` rather than NaN or infinity, and every
value is a plain Python number, so the dict is valid JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

# The time figures live in bartime; they stay importable from here.
from strategies.bartime import INTERVAL_SECONDS as INTERVAL_SECONDS
from strategies.bartime import PERIODS_PER_YEAR as PERIODS_PER_YEAR
from strategies.bartime import SECONDS_PER_YEAR as SECONDS_PER_YEAR
from strategies.bartime import Calendar, calendar_of
from strategies.bartime import calendar_years as calendar_years
from strategies.bartime import gap_stats as gap_stats
from strategies.bartime import periods_per_year as periods_per_year
from strategies.bartime import trade_gaps as trade_gaps
from strategies.fused import curve_summary, trade_summary
from strategies.kernels import empty, frame
from strategies.types import TRADE_COLUMNS, Trade

# A compound annual rate over a few days or weeks is an extrapolation, not a
# measurement (+3.96% over 6 hourly bars compounds to 4e26 % a year).
MIN_CAGR_DAYS = 30

# Below this a per-bar standard deviation is rounding noise, not volatility.
ZERO_STD = 1e-15

METRIC_KEYS = (
    "total_return_pct", "buy_hold_return_pct", "cagr_pct", "volatility_ann_pct",
    "sharpe", "sortino", "calmar", "max_drawdown_pct", "max_drawdown_duration",
    "num_trades", "win_rate_pct", "profit_factor", "expectancy_pct",
    "avg_trade_pct", "best_trade_pct", "worst_trade_pct", "avg_trade_duration",
    "exposure_pct", "final_equity", "long_trades", "short_trades",
    "win_rate_long_pct", "win_rate_short_pct", "exit_reasons", "missing_bars",
    "longest_gap_hours",
)  # fmt: skip

EXIT_REASONS = (
    "signal", "stop_loss", "take_profit", "trailing_stop", "end", "liquidation",
)  # fmt: skip


def _num(value: float) -> float | None:
    """Return value as a float, or None if it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Return per-bar simple returns of an equity curve (length n-1)."""
    out = empty(max(len(equity) - 1, 0))
    if len(equity) and equity[-1] == 0.0:
        # A liquidated short leaves 0 from then on (only it can reach 0): a bar
        # after that returns 0, as nothing is left to gain or lose.
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(equity[1:], equity[:-1], out=out)
        out[equity[:-1] == 0.0] = 1.0
    else:
        np.divide(equity[1:], equity[:-1], out=out)
    out -= 1.0
    return out


def total_return_pct(equity: np.ndarray) -> float:
    """Return the whole-period return of the equity curve in percent."""
    return float((equity[-1] / equity[0] - 1.0) * 100.0)


def buy_hold_return_pct(close: np.ndarray) -> float | None:
    """Return last close over first close in percent, without fees.

    Same convention as backtesting.py's "Buy & Hold Return": no entry or exit
    fee, so it is the market's move, not a strategy that buys and holds.
    """
    return _num((close[-1] / close[0] - 1.0) * 100.0)


def cagr_pct(equity: np.ndarray, years: float) -> float | None:
    """Return the compound annual growth rate over ``years`` calendar years, in
    percent; None below MIN_CAGR_DAYS (and when a huge return overflows)."""
    if not years * 365 >= MIN_CAGR_DAYS:
        return None
    try:
        growth = float(equity[-1] / equity[0]) ** (1.0 / years)
    except OverflowError:  # a huge return: no meaningful rate
        return None
    return _num((growth - 1.0) * 100.0)


def _sum_of_squares(values: np.ndarray) -> float:
    """Return the sum of squares in one pass (einsum, not BLAS: no thread pool)."""
    return float(np.einsum("i,i->", values, values))


def mean_std(returns: np.ndarray) -> tuple[float | None, float | None]:
    """Return the mean and sample standard deviation (ddof=1) of returns."""
    if len(returns) == 0:
        return None, None
    mean = float(returns.sum()) / len(returns)
    if len(returns) < 2:
        return mean, None
    with frame():  # the downside deviation reuses this scratch
        centered = empty(len(returns))
        np.subtract(returns, mean, out=centered)
        squares = _sum_of_squares(centered)
    return mean, math.sqrt(squares / (len(returns) - 1))


def volatility_ann_pct(std: float | None, periods_per_year: float) -> float | None:
    """Return the annualized standard deviation of bar returns, in percent."""
    if std is None:
        return None
    return _num(std * math.sqrt(periods_per_year) * 100.0)


def sharpe(
    mean: float | None, std: float | None, periods_per_year: float
) -> float | None:
    """Return mean / std of bar returns times sqrt(periods); risk-free 0.

    None when the curve does not move (std at rounding level), not infinity.
    """
    if mean is None or std is None or not std > ZERO_STD:
        return None
    return _num(mean / std * math.sqrt(periods_per_year))


def downside_deviation(returns: np.ndarray) -> float | None:
    """Return sqrt(mean(min(r, 0)^2)): the root mean square of the losses."""
    if len(returns) == 0:
        return None
    losses = empty(len(returns))
    # Against an array of zeros: NumPy's minimum with a scalar takes a slower
    # loop (1.5x the time of the fill and the comparison together).
    losses.fill(0.0)
    np.minimum(returns, losses, out=losses)
    return math.sqrt(_sum_of_squares(losses) / len(returns))


def sortino(
    mean: float | None, downside: float | None, periods_per_year: float
) -> float | None:
    """Return mean bar return over downside deviation times sqrt(periods).

    The target return is 0 and the deviation is taken over all bars (as in
    empyrical and vectorbt); backtesting.py divides an annualized return instead.
    """
    if mean is None or downside is None or not downside > ZERO_STD:
        return None
    return _num(mean / downside * math.sqrt(periods_per_year))


def running_peak(equity: np.ndarray) -> np.ndarray:
    """Return the highest equity so far at each bar."""
    peak = empty(len(equity))
    np.maximum.accumulate(equity, out=peak)
    return peak


# Bars per block in ``drawdown``: large enough that per-block work is cheap,
# small enough that the few blocks reaching a new high are cheap to scan. (A
# row reduction costs per row: 1,024 bars per block take a third of the time
# 256 do over W's curves, and the scans of the blocks at a peak no longer.)
_BLOCK = 1024


def drawdown(equity: np.ndarray) -> tuple[float, np.ndarray]:
    """Return (lowest equity / running peak, indices of the bars at their peak)."""
    lowest, top = _peak_marks(equity)
    return lowest, np.flatnonzero(top)


def _peak_marks(equity: np.ndarray) -> tuple[float, np.ndarray]:
    """Return (lowest equity / running peak, whether each bar is at its peak).

    A running maximum is a slow sequential scan, and equity curves rarely make
    new highs. So the curve is cut into blocks: a block whose highest value
    does not exceed the peak before it has that peak throughout, and only the
    blocks that reach it are scanned bar by bar (a block below it has no bar at
    its peak, so most of the curve is never compared bar by bar).
    """
    n = len(equity)
    rows = n // _BLOCK
    cut = rows * _BLOCK
    body = equity[:cut].reshape(rows, _BLOCK)
    before = np.empty(rows + 1)  # the peak before each block, and before the tail
    before[0] = -np.inf
    block_max = body.max(axis=1)
    np.maximum.accumulate(block_max, out=before[1:])
    prior = before[:rows]
    calm = block_max <= prior
    lowest = math.inf
    if calm.any():
        lowest = float((body.min(axis=1)[calm] / prior[calm]).min())
    # Blocks reaching the peak before them: those setting a new high, and calm
    # ones that touch it (their bars equal to it are at their peak).
    touch = np.flatnonzero(block_max >= prior)
    scan = body[touch]
    peak = np.maximum.accumulate(scan, axis=1)
    np.maximum(peak, prior[touch, None], out=peak)
    if len(touch):
        # Over a calm block this is min(body) / peak, already counted.
        lowest = min(lowest, float((scan / peak).min()))
    top = empty(n, np.bool_)
    top[:cut] = False
    top[:cut].reshape(rows, _BLOCK)[touch] = scan >= peak
    if n > cut:
        tail = equity[cut:]
        peak = np.maximum.accumulate(tail)
        np.maximum(peak, before[rows], out=peak)
        lowest = min(lowest, float((tail / peak).min()))
        np.greater_equal(tail, peak, out=top[cut:])
    return lowest, top


def max_drawdown_pct(equity: np.ndarray) -> float:
    """Return the deepest fall from a running peak as a positive percentage
    (23.5 means equity once stood 23.5% below its previous high)."""
    return (1.0 - drawdown(equity)[0]) * 100.0 if len(equity) else 0.0


def max_drawdown_duration(equity: np.ndarray) -> int:
    """Return the longest run of consecutive bars spent below a previous peak."""
    return _longest_gap(drawdown(equity)[1], len(equity)) if len(equity) else 0


def _longest_gap(highs: np.ndarray, n: int) -> int:
    """Return the most bars between two bars at a peak, or after the last one."""
    # Bar 0 is always at its peak.
    longest = n - int(highs[-1]) if len(highs) else n
    if len(highs) > 1:
        longest = max(longest, int((highs[1:] - highs[:-1]).max()))
    return longest - 1


def _longest_below(top: np.ndarray) -> int:
    """Return _longest_gap of the bars marked at their peak, from the marks.

    The longest run of unmarked bars after the first marked one: the marks
    change far less often than they are set (a flat stretch of cash at its
    peak is one run), so the runs are cheaper to find than every marked bar.
    """
    n = len(top)
    first = int(top.argmax()) if n else 0
    if not n or not top[first]:
        return n - 1
    rest = n - first - 1
    changed = empty(rest, np.bool_)
    np.not_equal(top[first + 1 :], top[first:-1], out=changed)
    # Runs after the first marked run alternate unmarked, marked, ...
    starts = np.flatnonzero(changed)
    starts += first + 1
    below = starts[0::2]
    ends = np.empty(len(below), dtype=np.intp)
    ends[: len(starts) // 2] = starts[1::2]
    ends[len(starts) // 2 :] = n
    return int((ends - below).max(initial=0))


def curve_stats(
    equity: np.ndarray, summary: tuple | None = None
) -> tuple[float | None, float | None, float | None, float, int]:
    """Return mean_std and downside_deviation of the bar returns, the lowest
    equity / running peak and max_drawdown_duration, from one compiled pass
    (``summary``: its fused.curve_summary when the caller has it)."""
    n = len(equity)
    mean, squares, losses, lowest, longest = summary or curve_summary(equity)
    if n < 2:
        return None, None, None, lowest, longest
    std = math.sqrt(squares / (n - 2)) if n > 2 else None
    return mean, std, math.sqrt(losses / (n - 1)), lowest, longest


def calmar(cagr: float | None, max_dd_pct: float) -> float | None:
    """Return CAGR over maximum drawdown (both in percent)."""
    if cagr is None or not max_dd_pct > 1e-12:
        return None
    return _num(cagr / max_dd_pct)


def exposure_pct(position: np.ndarray) -> float:
    """Return the share of bars spent in a position, in percent.

    A bar counts when a position is held during it, so the bars_held of all
    trades add up to exactly these bars (see Trade.bars_held).
    """
    if not len(position):
        return 0.0
    return int(np.count_nonzero(position)) * 100.0 / len(position)


def trade_table(trades: Mapping[str, np.ndarray] | Sequence[Trade]) -> dict:
    """Return trades column-wise (one array per Trade field)."""
    if isinstance(trades, Mapping):
        return dict(trades)
    columns = list(zip(*trades, strict=True)) or [()] * len(TRADE_COLUMNS)
    pairs = zip(TRADE_COLUMNS, columns, strict=True)
    return {name: np.asarray(column) for name, column in pairs}


def trade_stats(trades: Mapping[str, np.ndarray]) -> dict[str, float | None]:
    """Return win rate, profit factor, expectancy, average/best/worst trade and
    average duration from a trade table (one array per Trade field)."""
    count = len(trades["return_pct"])
    if not count:
        return dict.fromkeys(
            ("win_rate_pct", "profit_factor", "expectancy_pct", "avg_trade_pct",
             "best_trade_pct", "worst_trade_pct", "avg_trade_duration")
        )  # fmt: skip
    side = trades.get("side")
    short = (
        np.asarray(side) == "short" if side is not None else np.zeros(count, np.bool_)
    )
    return summarize_trades(
        count,
        trade_summary(
            *(
                np.asarray(trades[name], dtype=np.float64)
                for name in ("return_pct", "units", "entry_price", "exit_price", "fees")
            ),
            short,
            np.asarray(trades["bars_held"], dtype=np.int64),
        ),
    )


def summarize_trades(
    count: int, summary: tuple[int, float, float, float, float, float, float, float]
) -> dict[str, float | None]:
    """Return trade_stats from ``count`` trades' ``fused.trade_summary``."""
    wins, gains, losses, total, logs, best, worst, held = summary
    return {
        "win_rate_pct": wins * 100.0 / count,
        # Gross profit over gross loss in money; None (not infinity) with no loss.
        "profit_factor": _num(gains / losses) if losses > 0 else None,
        # Expectancy is the arithmetic mean trade return; the average trade is
        # the geometric mean, as backtesting.py reports them.
        "expectancy_pct": _num(total / count * 100.0),
        "avg_trade_pct": _num((np.exp(logs / count) - 1.0) * 100.0),
        "best_trade_pct": _num(best * 100.0),
        "worst_trade_pct": _num(worst * 100.0),
        # Integers below 2**53 add up exactly as floats.
        "avg_trade_duration": held / count,
    }


# The order in which side_stats looks for exit reasons: the common ones first,
# so that it can stop as soon as every trade is accounted for.
_REASON_SEARCH = (
    "signal", "end", "stop_loss", "trailing_stop", "take_profit", "liquidation",
)  # fmt: skip


def side_stats(trades: Mapping[str, np.ndarray]) -> dict[str, object]:
    """Return the trade counts and win rates per side, and the count of trades
    per exit reason (every reason present, 0 when unused)."""
    count = len(trades["return_pct"])
    won = np.asarray(trades["return_pct"], dtype=np.float64) > 0
    side = trades.get("side")
    longs = np.asarray(side) == "long" if side is not None else None
    long_count = count if longs is None else int(np.count_nonzero(longs))
    counts = {"long": long_count, "short": 0}
    wins = {"long": 0, "short": 0}
    if longs is None or long_count == count:  # no other side to look for
        wins["long"] = int(np.count_nonzero(won))
    else:
        shorts = np.asarray(side) == "short"
        counts["short"] = int(np.count_nonzero(shorts))
        wins["long"] = int(np.count_nonzero(won & longs))
        wins["short"] = int(np.count_nonzero(won & shorts))
    out: dict[str, object] = {f"{name}_trades": counts[name] for name in counts}
    for name, trades_on_side in counts.items():
        out[f"win_rate_{name}_pct"] = (
            wins[name] * 100.0 / trades_on_side if trades_on_side else None
        )
    reasons = dict.fromkeys(EXIT_REASONS, 0)
    reason = trades.get("exit_reason")
    if reason is None:
        reasons["signal"] = count
    else:
        reason, left = np.asarray(reason), count
        for name in _REASON_SEARCH:
            if not left:
                break
            reasons[name] = int(np.count_nonzero(reason == name))
            left -= reasons[name]
    out["exit_reasons"] = reasons
    return out


def compute_metrics(
    equity: np.ndarray,
    trades: Mapping[str, np.ndarray] | Sequence[Trade],
    position: np.ndarray,
    close: np.ndarray,
    *,
    interval: str = "1h",
    time: np.ndarray | None = None,
    calendar: Calendar | None = None,
    curve: tuple | None = None,
) -> dict[str, float | int | None]:
    """Return every metric of one backtest, keyed as in METRIC_KEYS.

    ``time`` holds the bars' open times (epoch seconds); without it the bars
    are taken as evenly spaced. ``calendar`` is ``bartime.calendar_of`` those
    times, when the caller has it already (the same for every strategy run on
    one coin's bars). ``curve`` is ``fused.curve_summary(equity)`` when the
    caller has it (``fused.long_path`` gives it with the curve).

    total_return_pct       final / first equity - 1, in %
    buy_hold_return_pct    last / first close - 1, in %, without fees
    cagr_pct               compound annual growth over the calendar span, in %
    volatility_ann_pct     std (ddof=1) of bar returns * sqrt(periods), in %
    sharpe                 mean / std of bar returns * sqrt(periods)
    sortino                mean / downside deviation * sqrt(periods)
    calmar                 cagr_pct / max_drawdown_pct
    max_drawdown_pct       deepest fall from a running peak, positive: 23.5 = -23.5%
    max_drawdown_duration  longest run of bars below a previous peak
    num_trades             round trips, one still open at the end included
    win_rate_pct           share of trades with a positive net return, in %
    profit_factor          gross profit / gross loss, in money, fees included
    expectancy_pct         arithmetic mean net trade return, in %
    avg_trade_pct          geometric mean net trade return, in %
    best_trade_pct         best net trade return, in %
    worst_trade_pct        worst net trade return, in %
    avg_trade_duration     mean bars held per trade (bars_held)
    exposure_pct           share of bars in a position, in %: sum(bars_held) / bars
    final_equity           equity at the last close, after any closing fee
    long_trades            trades on the long side
    short_trades           trades on the short side
    win_rate_long_pct      win rate of the long trades, in %
    win_rate_short_pct     win rate of the short trades, in %
    exit_reasons           count of trades per exit reason (EXIT_REASONS)
    missing_bars           bars absent between the first and last bar
    longest_gap_hours      longest stretch without a bar, in hours

    ``periods`` is periods_per_year(): the bars a calendar year holds at this
    range's rate. None where undefined: volatility with fewer than 3 bars;
    Sharpe when the curve never moves; Sortino without a losing bar; CAGR (and
    so Calmar) over less than 30 days or when a huge return overflows; Calmar
    without a drawdown; the trade statistics without trades; profit factor
    without a losing trade.
    """
    if calendar is None:
        calendar = calendar_of(time, len(equity), interval)
    periods = calendar.periods
    table = trade_table(trades)
    mean, std, downside, lowest, longest = curve_stats(equity, curve)
    max_dd = (1.0 - lowest) * 100.0
    cagr = cagr_pct(equity, calendar.years)
    metrics = {
        "total_return_pct": _num(total_return_pct(equity)),
        "buy_hold_return_pct": buy_hold_return_pct(close),
        "cagr_pct": cagr,
        "volatility_ann_pct": volatility_ann_pct(std, periods),
        "sharpe": sharpe(mean, std, periods),
        "sortino": sortino(mean, downside, periods),
        "calmar": calmar(cagr, max_dd),
        "max_drawdown_pct": max_dd,
        "max_drawdown_duration": longest,
        "num_trades": len(table["return_pct"]),
        **trade_stats(table),
        "exposure_pct": exposure_pct(position),
        "final_equity": _num(equity[-1]),
        **side_stats(table),
        **calendar.gap_metrics(),
    }
    return metrics
