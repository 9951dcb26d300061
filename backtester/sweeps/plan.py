"""What a unit of sweep work needs to know, and how the work is split.

A sweep is split into (coin, block of combinations) pieces. Blocks are taken in
order across all coins, so the first block's cells are complete (every coin has
computed them) long before the last block starts: the heatmap fills from the
first moment instead of all at once at the end. The first block is small for a
quick first cell; the others are larger so each coin's shared indicators serve
many combinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from backtester.library.selectors import strategy_or_key

if TYPE_CHECKING:
    from backtester.sweeps.models import Sweep


@dataclass(frozen=True)
class SweepPlan:
    """A stored sweep as the computing side sees it (no model instance)."""

    sweep_id: int
    strategy: str
    combinations: tuple[dict, ...]
    symbols: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    interval: str
    fee: float
    slippage_bps: float
    objective: str
    block_first: int
    block_size: int
    strategy_version: int | None = None

    @property
    def engine_strategy(self):
        """Return what the engine runs: the key, or the saved version's spec."""
        return strategy_or_key(self.strategy, {self.strategy: self.strategy_version})

    def blocks(self) -> list[range]:
        """Return the blocks of combination indexes, in the order to compute them."""
        return blocks(
            len(self.combinations), first=self.block_first, size=self.block_size
        )

    def block_of(self, index: int) -> range:
        """Return the block holding combination ``index``."""
        for block in self.blocks():
            if index in block:
                return block
        raise ValueError(f"index: no combination {index} in sweep {self.sweep_id}")


@dataclass
class CoinBlock:
    """One coin's metrics for one block: ``columns`` holds ``index`` and one
    float64 column per metric (NaN for None); no columns when ``bars`` is 0."""

    symbol: str
    first: int
    size: int
    bars: int
    columns: dict[str, np.ndarray]


def blocks(count: int, *, first: int, size: int) -> list[range]:
    """Split ``count`` combinations into a block of ``first``, then of ``size``."""
    if count <= 0:
        return []
    first, size = max(1, first), max(1, size)
    out = [range(0, min(first, count))]
    out += [range(i, min(i + size, count)) for i in range(out[0].stop, count, size)]
    return out


def plan_of(sweep: Sweep) -> SweepPlan:
    """Return the plan of a loaded sweep (its stored settings)."""
    return SweepPlan(
        sweep_id=sweep.pk,
        strategy=sweep.strategy,
        combinations=tuple(sweep.combinations),
        symbols=tuple(sweep.symbols),
        start=sweep.start,
        end=sweep.end,
        interval=sweep.interval,
        fee=sweep.fee,
        slippage_bps=sweep.slippage_bps,
        objective=sweep.objective,
        block_first=sweep.block_first,
        block_size=sweep.block_size,
        strategy_version=sweep.strategy_version_id,
    )
