"""BACKTEST_STRATEGY_MODULES and the example Python strategy."""

from __future__ import annotations

import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from backtester.library.modules import load_configured
from backtester.runs.tests.factories import random_walk
from strategies.engine import run_backtest
from strategies.registry import STRATEGIES, StrategySpec, register
from strategies.types import Bars


def momentum_trades(close: list[float], lookback: int, threshold: float) -> int:
    """Return the trades of the example, long side, by a plain loop."""
    held = [
        t >= lookback and (close[t] / close[t - lookback] - 1) * 100 > threshold
        for t in range(len(close))
    ]
    return sum(
        1 for t in range(len(close) - 1) if held[t] and (t == 0 or not held[t - 1])
    )


@pytest.fixture(autouse=True)
def _forget_momentum():
    """Leave the registry as other tests expect it: the six built-ins."""
    yield
    STRATEGIES.pop("momentum", None)
    sys.modules.pop("backtester.library.examples.momentum", None)


def test_configured_modules_register_their_strategies(settings):
    settings.BACKTEST_STRATEGY_MODULES = ["backtester.library.examples.momentum"]
    assert load_configured() == ["backtester.library.examples.momentum"]
    spec = STRATEGIES["momentum"]
    bars = Bars(*random_walk(600, seed=3))
    result = run_backtest(bars, "momentum", {"lookback": 12, "threshold": 0.5})
    assert result.metrics["num_trades"] == momentum_trades(bars.close.tolist(), 12, 0.5)
    assert register(spec) is spec  # imported twice: harmless
    with pytest.raises(ValueError, match="already taken"):
        register(StrategySpec("momentum", "x", "", (), spec.signal))


def test_a_module_that_cannot_load_stops_start_up(settings):
    settings.BACKTEST_STRATEGY_MODULES = ["backtester.library.examples.nothing_here"]
    with pytest.raises(ImproperlyConfigured, match="nothing_here"):
        load_configured()
