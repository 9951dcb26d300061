"""Portfolio runs and sweeps on Celery workers (BACKTEST_EXECUTOR=celery).

A portfolio run is one task: its account pass needs every coin's signals at
once, so the whole run is one piece. A portfolio sweep is one task per block
of combinations sharing their strategy parameters (at most BLOCK_CELLS), so a
block computes its coins' signals once, as the thread pool does. Workers
store and publish each result themselves (pieces.py); the web process sends
and watches the tasks as ``execution.remote`` does any such job.
"""

from __future__ import annotations

from strategies.grid import split_params
from strategies.portfolio_sweep import MAX_POSITIONS_KEY

# The tasks' names (tasks.py registers them under these).
RUN_TASK = "backtester.portfolio_run"
SWEEP_TASK = "backtester.portfolio_sweep_block"
# Cells per sweep task at most: small enough that several workers share a
# sweep of one strategy setting, large enough that a task is not all overhead.
BLOCK_CELLS = 16


def sweep_blocks(combinations: list[dict]) -> list[list[int]]:
    """Return the sweep's tasks: indexes sharing strategy parameters, in
    blocks of at most BLOCK_CELLS, in the order the combinations come."""
    groups: dict[tuple, list[int]] = {}
    for index, combination in enumerate(combinations):
        chosen = {k: v for k, v in combination.items() if k != MAX_POSITIONS_KEY}
        params, _risk = split_params(chosen)
        groups.setdefault(tuple(sorted(params.items())), []).append(index)
    return [
        indexes[i : i + BLOCK_CELLS]
        for indexes in groups.values()
        for i in range(0, len(indexes), BLOCK_CELLS)
    ]
