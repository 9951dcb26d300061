"""Portfolio backtests: one strategy over a basket of coins from one account.

10,000 of cash (``initial_equity``), at most ``max_positions`` open at once,
long only, on the union of the coins' bar times (the README, "Portfolio
backtests"). Each coin's conditions come from the single-coin strategy code
(``portfolio_signals``); the account is walked once by the compiled pass
(``portfolio_pass``); metrics are in ``portfolio_metrics``.

A coin's open position closes at the close of the coin's own last bar (fee,
no slippage, reason "end"): for coins that run to the end of the range that
is the end of the run; a coin whose bars stop earlier frees its slot and cash
then rather than holding them, valued at that close, to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from strategies.engine import INITIAL_EQUITY, _check_bars, _check_costs
from strategies.execution import REASONS
from strategies.kernels import frame, scratch
from strategies.portfolio_metrics import portfolio_metrics
from strategies.portfolio_pass import (
    T_BARS,
    T_COIN,
    T_ENTRY,
    T_ENTRY_FILL,
    T_EXIT,
    T_EXIT_FILL,
    T_REASON,
    T_UNITS,
    portfolio_pass,
)
from strategies.portfolio_signals import RANKS, CoinSignals, coin_signals, rank_keys
from strategies.registry import get_strategy, validate_params
from strategies.risk import Risk, validate_risk
from strategies.types import Bars, Metrics

__all__ = [
    "DEFAULT_MAX_POSITIONS",
    "PortfolioResult",
    "run_portfolio",
]

DEFAULT_MAX_POSITIONS = 5
MAX_POSITIONS = 100
REASON_NAMES = np.array(REASONS)

# Called after each coin's signals are ready: (symbol, completed, total).
Progress = Callable[[str, int, int], None]


@dataclass
class PortfolioResult:
    """Everything one portfolio run produces.

    ``time`` holds the union of the coins' bar times; ``equity`` the account
    (cash plus each position at its coin's latest close) at each of them and
    ``positions`` the positions held during each bar. ``trades`` is
    column-wise: symbol, side, entry/exit time and fill, units, pnl (money,
    fees included), return_pct (over the stake), exit_reason and bars (the
    coin's own bars held, as ``Trade.bars_held``).
    """

    strategy: str
    params: dict
    symbols: list[str]
    time: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
    trades: dict[str, np.ndarray]
    fees_paid: float
    rejected_signals: int
    max_positions: int
    rank: str
    risk: Risk
    metrics: Metrics = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)


def _check_settings(max_positions: object, rank: object, risk: Risk) -> None:
    """Raise ValueError naming the first setting a portfolio cannot take."""
    if (
        isinstance(max_positions, bool)
        or not isinstance(max_positions, int | np.integer)
        or not 1 <= max_positions <= MAX_POSITIONS
    ):
        raise ValueError(
            f"max_positions: must be an integer from 1 to {MAX_POSITIONS}, "
            f"got {max_positions!r}"
        )
    if rank not in RANKS:
        raise ValueError(f"rank: must be one of {', '.join(RANKS)}, got {rank!r}")
    if risk.direction != "long":
        raise ValueError(
            f"direction: a portfolio trades long only, got {risk.direction!r}"
        )
    if risk.position_size != 1.0:
        raise ValueError(
            "position_size: a portfolio stakes min(cash, equity / max_positions); "
            f"got {risk.position_size!r}"
        )


def _checked_coins(coins: Mapping[str, Bars]) -> tuple[list[str], list[Bars]]:
    """Return the symbols in order and their checked bars, or raise ValueError."""
    if not isinstance(coins, Mapping) or not coins:
        raise ValueError("coins: expected a non-empty mapping of symbol to bars")
    symbols = sorted(coins)
    checked = []
    for symbol in symbols:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(
                f"coins: every symbol must be a non-empty string, got {symbol!r}"
            )
        try:
            bars = _check_bars(coins[symbol])
        except ValueError as error:
            raise ValueError(f"coins[{symbol!r}]: {error}") from None
        if len(bars.time) > 1 and not np.all(bars.time[1:] > bars.time[:-1]):
            raise ValueError(f"coins[{symbol!r}]: bar times must strictly increase")
        checked.append(bars)
    return symbols, checked


def _fraction(value: float | None) -> float:
    return np.nan if value is None else value


def union_clock(times: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (union times, bar order, group starts) of coins' concatenated bars.

    ``order`` lists the concatenated bars by time, coins in their given order
    within a time; ``order[start[u]:start[u + 1]]`` are the bars at union time u.
    """
    stacked = np.concatenate(times)
    # Stable: within a time the coins keep their (symbol) order.
    order = np.argsort(stacked, kind="stable")
    ordered = stacked[order]
    new = np.empty(len(ordered), dtype=np.bool_)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    group_start = np.append(starts, len(ordered))
    return ordered[starts], order, group_start


def run_portfolio(
    coins: Mapping[str, Bars],
    strategy: str,
    params: Mapping[str, object] | None = None,
    *,
    max_positions: int = DEFAULT_MAX_POSITIONS,
    rank: str = "symbol",
    risk: Risk | Mapping[str, object] | None = None,
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    initial_equity: float = INITIAL_EQUITY,
    progress: Progress | None = None,
) -> PortfolioResult:
    """Backtest one strategy over several coins traded from one account.

    ``coins`` maps each symbol to its bars. ``params`` are validated
    (ParamError lists every problem), ``risk`` too (stop, target and trailing
    stop; direction must be long and size 1); bad bars, costs, ``max_positions``
    or ``rank`` raise ValueError naming the argument. ``progress`` is called
    after each coin's signals are ready.
    """
    _check_costs(fee, slippage_bps, interval, initial_equity)
    risk = validate_risk(risk)
    _check_settings(max_positions, rank, risk)
    checked_params = validate_params(strategy, params or {})
    spec = get_strategy(strategy)
    symbols, bars = _checked_coins(coins)

    signals: list[CoinSignals] = []
    keys: list[np.ndarray] = []
    # Indicators in reusable scratch memory, coin after coin: only the
    # conditions and rank keys (copies) outlive a coin's frame.
    with scratch():
        for done, (symbol, coin) in enumerate(zip(symbols, bars, strict=True), 1):
            with frame():
                signals.append(coin_signals(coin, spec, checked_params))
                keys.append(rank_keys(coin, rank))
            if progress is not None:
                progress(symbol, done, len(symbols))
    return portfolio_from_signals(
        symbols, bars, signals, keys,
        strategy=strategy, params=checked_params, max_positions=int(max_positions),
        rank=rank, risk=risk, fee=float(fee), slippage_bps=float(slippage_bps),
        interval=interval, initial_equity=float(initial_equity),
    )  # fmt: skip


def portfolio_from_signals(
    symbols: list[str],
    bars: list[Bars],
    signals: list[CoinSignals],
    keys: list[np.ndarray],
    *,
    strategy: str,
    params: dict,
    max_positions: int,
    rank: str,
    risk: Risk,
    fee: float,
    slippage_bps: float,
    interval: str,
    initial_equity: float,
) -> PortfolioResult:
    """Run the account over checked bars and their signals (symbols sorted)."""
    inputs, time = pass_inputs(bars, signals, keys)
    equity, positions, ints, floats, fees, rejected = portfolio_pass(
        *inputs, max_positions,
        _fraction(risk.stop_loss), _fraction(risk.take_profit),
        _fraction(risk.trailing_stop), fee, slippage_bps / 10_000.0,
        initial_equity,
    )  # fmt: skip
    all_times = np.concatenate([coin.time for coin in bars])
    trades = trade_columns(symbols, all_times, ints, floats, fee)
    result = PortfolioResult(
        strategy=strategy,
        params=params,
        symbols=symbols,
        time=time,
        equity=equity,
        positions=positions,
        trades=trades,
        fees_paid=float(fees),
        rejected_signals=int(rejected),
        max_positions=max_positions,
        rank=rank,
        risk=risk,
    )
    result.metrics, result.contributions = portfolio_metrics(
        time, equity, positions, trades, symbols, bars,
        fees_paid=result.fees_paid, rejected_signals=result.rejected_signals,
        fee=fee, interval=interval,
    )  # fmt: skip
    return result


def pass_inputs(
    bars: list[Bars], signals: list[CoinSignals], keys: list[np.ndarray]
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Return the pass's array arguments (bars, signals, ranks, clock) and the
    union times, the coins' arrays concatenated in their given order."""
    lengths = np.array([len(coin.time) for coin in bars], dtype=np.int64)
    coin_end = np.cumsum(lengths) - 1
    coin_of = np.repeat(np.arange(len(bars), dtype=np.int64), lengths)
    time, order, group_start = union_clock([coin.time for coin in bars])

    def stacked(columns: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate(columns), dtype=dtype)

    arrays = (
        *(stacked([coin[i] for coin in bars], np.float64) for i in range(1, 5)),
        stacked([s.entry for s in signals], np.bool_),
        stacked([s.exit for s in signals], np.bool_),
        stacked(keys, np.float64),
        coin_of,
        coin_end,
        np.array([s.holds_while for s in signals], dtype=np.bool_),
        order.astype(np.int64, copy=False),
        group_start.astype(np.int64, copy=False),
    )
    return arrays, time


def trade_columns(
    symbols: list[str],
    times: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    fee: float,
) -> dict[str, np.ndarray]:
    """Return the pass's trade records as named columns, oldest exit first."""
    entry_price = floats[:, T_ENTRY_FILL]
    exit_price = floats[:, T_EXIT_FILL]
    units = floats[:, T_UNITS]
    cost = entry_price * (1.0 + fee)
    proceeds = exit_price * (1.0 - fee)
    reason = ints[:, T_REASON]
    return {
        "symbol": np.array(symbols, dtype=object)[ints[:, T_COIN]].astype(str),
        "side": np.full(len(ints), "long"),
        "entry_time": times[ints[:, T_ENTRY]],
        "exit_time": times[ints[:, T_EXIT]],
        "entry_price": entry_price,
        "exit_price": exit_price,
        "units": units,
        "pnl": units * (proceeds - cost),
        "return_pct": (proceeds - cost) / cost * 100.0,
        "exit_reason": REASON_NAMES[reason],
        "bars_held": ints[:, T_BARS],
        "fees": units * (entry_price + exit_price) * fee,
        "closed_at_end": REASON_NAMES[reason] == "end",
    }
