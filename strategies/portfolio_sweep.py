"""Portfolio sweeps: one portfolio run per combination of a grid, bars shared.

A combination is a strategy's full parameters plus any stop settings and
``max_positions``. Every cell gives exactly what ``run_portfolio`` gives for
the same settings: the same signal code and the same account pass. What does
not change between cells is computed once: the coins' bars are checked once,
the rank values once (the rank is fixed for the whole sweep), and each coin's
entry and exit conditions once per distinct set of strategy parameters, since
neither ``max_positions`` nor the stops change them (they act in the pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from strategies.engine import INITIAL_EQUITY, _check_costs
from strategies.grid import split_params
from strategies.kernels import frame, scratch
from strategies.portfolio import (
    PortfolioResult,
    _check_settings,
    _checked_coins,
    portfolio_from_signals,
)
from strategies.portfolio_signals import CoinSignals, coin_signals, rank_keys
from strategies.registry import get_strategy, validate_params
from strategies.risk import validate_risk
from strategies.types import Bars

__all__ = ["MAX_POSITIONS_KEY", "portfolio_sweep"]

# The axis a portfolio sweep adds to a strategy's parameters.
MAX_POSITIONS_KEY = "max_positions"

# Called after each finished cell: (completed, total).
Progress = Callable[[int, int], None]


def _signal_key(params: Mapping[str, object]) -> tuple:
    return tuple(sorted(params.items()))


def portfolio_sweep(
    coins: Mapping[str, Bars],
    strategy: str,
    combinations: Sequence[Mapping[str, object]],
    *,
    rank: str = "symbol",
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    initial_equity: float = INITIAL_EQUITY,
) -> Iterator[tuple[int, PortfolioResult]]:
    """Yield (index, result) of a portfolio run for each combination.

    Each combination holds the strategy's parameters, optionally stop settings
    (``stop_loss_pct``, ``take_profit_pct``, ``trailing_stop_pct``) and
    ``max_positions``; a bad one raises ValueError (or ParamError) naming the
    setting, as ``run_portfolio`` does. Combinations sharing strategy
    parameters are run together so their conditions are computed once; the
    results come in that order, each with its index in ``combinations``.
    """
    _check_costs(fee, slippage_bps, interval, initial_equity)
    spec = get_strategy(strategy)
    symbols, bars = _checked_coins(coins)
    groups: dict[tuple, list[tuple[int, dict, dict, int]]] = {}
    for index, combination in enumerate(combinations):
        chosen = dict(combination)
        max_positions = chosen.pop(MAX_POSITIONS_KEY, None)
        params, risk = split_params(chosen)
        params = validate_params(strategy, params)
        risk = validate_risk(risk)
        _check_settings(max_positions, rank, risk)
        groups.setdefault(_signal_key(params), []).append(
            (index, params, risk, int(max_positions))
        )
    keys = [rank_keys(coin, rank) for coin in bars]
    for cells in groups.values():
        params = cells[0][1]
        signals: list[CoinSignals] = []
        # As run_portfolio: indicators in scratch memory, conditions copied out.
        with scratch():
            for coin in bars:
                with frame():
                    signals.append(coin_signals(coin, spec, params))
        for index, _params, risk, max_positions in cells:
            yield index, portfolio_from_signals(
                symbols, bars, signals, keys,
                strategy=strategy, params=params, max_positions=max_positions,
                rank=rank, risk=risk, fee=float(fee),
                slippage_bps=float(slippage_bps), interval=interval,
                initial_equity=float(initial_equity),
            )  # fmt: skip
