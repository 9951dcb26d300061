"""Turn a portfolio request (websocket message or CLI flags) into a checked spec.

The basket, range, costs, strategy and stops are checked by the run request's
own rules (``runs.validation``), so a field means the same in both; what only
a portfolio has (``max_positions``, ``rank``) is checked here, and what a
portfolio cannot do (short, size, several strategies) is refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from backtester.runs.validation import RequestError, RunSpec, iso, run_spec
from strategies.params import brief
from strategies.portfolio import DEFAULT_MAX_POSITIONS, MAX_POSITIONS
from strategies.portfolio_signals import RANKS
from strategies.registry import STRATEGIES
from strategies.risk import DEFAULT_RISK, Risk

STOP_FIELDS = ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct")
PORTFOLIO_FIELDS = {
    *STOP_FIELDS,
    "type",
    "strategy",
    "params",
    "symbols",
    "start",
    "end",
    "interval",
    "fee",
    "slippage_bps",
    "max_positions",
    "rank",
}
# What a run takes and a portfolio refuses, with the reason given.
REFUSED = {
    "direction": "a portfolio trades long only",
    "position_size": "a portfolio stakes min(cash, equity / max_positions)",
    "strategies": "a portfolio trades one strategy: give strategy",
}


@dataclass(frozen=True)
class PortfolioSpec:
    """A validated portfolio request."""

    strategy: str
    params: dict
    symbols: tuple[str, ...] | None = None  # None: every active coin
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    interval: str = "1h"
    fee: float = 0.001
    slippage_bps: float = 0.0
    max_positions: int = DEFAULT_MAX_POSITIONS
    rank: str = "symbol"
    risk: Risk = DEFAULT_RISK

    @property
    def run(self) -> RunSpec:
        """Return the same request as a run's spec (for the coins' lookup)."""
        return RunSpec(
            jobs=((self.strategy, self.params),),
            symbols=self.symbols,
            start=self.start,
            end=self.end,
            interval=self.interval,
            fee=self.fee,
            slippage_bps=self.slippage_bps,
            risk=self.risk,
        )

    def as_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "params": self.params,
            "symbols": list(self.symbols) if self.symbols is not None else None,
            "start": iso(self.start),
            "end": iso(self.end),
            "interval": self.interval,
            "fee": self.fee,
            "slippage_bps": self.slippage_bps,
            "max_positions": self.max_positions,
            "rank": self.rank,
            **{name: getattr(self.risk, name) for name in STOP_FIELDS},
        }


def _max_positions(value: object) -> int:
    if value is None:
        return DEFAULT_MAX_POSITIONS
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())  # the command line passes text
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(
            f"max_positions: expected a whole number, got {brief(value)}",
            "max_positions",
        )
    if not 1 <= value <= MAX_POSITIONS:
        raise RequestError(
            f"max_positions: must be between 1 and {MAX_POSITIONS}", "max_positions"
        )
    return value


def _rank(value: object) -> str:
    if value is None or value == "":
        return "symbol"
    if not isinstance(value, str) or value not in RANKS:
        raise RequestError(
            f"rank: must be one of {', '.join(RANKS)}, got {brief(value)}", "rank"
        )
    return value


def portfolio_spec(data: Mapping) -> PortfolioSpec:
    """Return the PortfolioSpec of a request mapping or raise RequestError."""
    if not isinstance(data, Mapping):
        raise RequestError("expected a JSON object")
    for name, reason in REFUSED.items():
        if name in data:
            problem = f"not for a portfolio; {reason}"
            raise RequestError(f"{name}: {problem}", name, [(name, problem)])
    unknown = sorted(set(data) - PORTFOLIO_FIELDS, key=str)
    if unknown:
        name = brief(unknown[0]).strip("'")
        raise RequestError(f"{name}: unknown field", name)
    strategy = data.get("strategy")
    if strategy == "all":
        raise RequestError(
            f"strategy: a portfolio trades one strategy; choose one of "
            f"{', '.join(STRATEGIES)}",
            "strategy",
        )
    max_positions = _max_positions(data.get("max_positions"))
    rank = _rank(data.get("rank"))
    run = run_spec(
        {k: v for k, v in data.items() if k not in ("max_positions", "rank")}
    )
    ((key, params),) = run.jobs
    if STRATEGIES[key].sides is None:
        raise RequestError(
            f"strategy: {key} gives no entry and exit conditions to trade a "
            "portfolio with",
            "strategy",
        )
    return PortfolioSpec(
        strategy=key,
        params=params,
        symbols=run.symbols,
        start=run.start,
        end=run.end,
        interval=run.interval,
        fee=run.fee,
        slippage_bps=run.slippage_bps,
        max_positions=max_positions,
        rank=rank,
        risk=run.risk,
    )
