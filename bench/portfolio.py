"""Portfolio benchmark: one account over 48 coins x 5 years of hourly bars
(the synthetic walks of bench/engine.py), max_positions 5, rank roc_24.
Prints figures; asserts nothing.

    .venv/bin/python bench/portfolio.py [--coins 48] [--bars 43800]
        [--strategy sma_crossover] [--repeat 5] [--stops]

Reported, best of ``--repeat`` warm runs on one thread: the signals (every
coin's entry and exit conditions and rank values), the inputs of the pass
(concatenation and the union clock), the compiled pass alone, the metrics
and trade table, the whole ``run_portfolio``; then the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import synthetic  # noqa: E402

from strategies.portfolio import (  # noqa: E402
    pass_inputs,
    portfolio_from_signals,
    run_portfolio,
)
from strategies.portfolio_pass import compile_kernels, portfolio_pass  # noqa: E402
from strategies.portfolio_signals import coin_signals, rank_keys  # noqa: E402
from strategies.registry import get_strategy, validate_params  # noqa: E402
from strategies.risk import Risk  # noqa: E402

MAX_POSITIONS, RANK, FEE = 5, "roc_24", 0.001


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    """Return the best wall time of ``repeat`` runs after one warm-up, and a result."""
    result = run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=48, help="coins in the basket")
    parser.add_argument("--bars", type=int, default=43_800, help="hourly bars a coin")
    parser.add_argument("--strategy", default="sma_crossover", help="strategy key")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs each")
    parser.add_argument(
        "--stops", action="store_true", help="add a 5%% stop, 10%% target, 3%% trail"
    )
    args = parser.parse_args()
    risk = Risk(5.0, 10.0, 3.0) if args.stops else Risk()
    data = synthetic(args.coins, args.bars)
    # Later listings, as in real baskets: coin i starts i x 200 hours in.
    data = [type(b)(*(c[i * 200 :] for c in b)) for i, b in enumerate(data)]
    coins = {f"C{i:03d}": bars for i, bars in enumerate(data)}
    symbols = sorted(coins)
    bars = [coins[s] for s in symbols]
    spec = get_strategy(args.strategy)
    params = validate_params(args.strategy, {})
    total = sum(len(b.time) for b in bars)
    print(
        f"{args.coins} coins, {total:,} bars, {args.strategy}, "
        f"max_positions {MAX_POSITIONS}, rank {RANK}, risk {risk.as_dict()}"
    )

    began = time.perf_counter()
    compile_kernels()
    print(f"compile or load the pass:  {time.perf_counter() - began:.3f} s")

    def signals() -> tuple[list, list]:
        return (
            [coin_signals(b, spec, params) for b in bars],
            [rank_keys(b, RANK) for b in bars],
        )

    signal_s, (conditions, keys) = best_of(args.repeat, signals)
    inputs_s, (inputs, _) = best_of(
        args.repeat, lambda: pass_inputs(bars, conditions, keys)
    )
    sl, tp, ts = (np.nan if v is None else v for v in
                  (risk.stop_loss, risk.take_profit, risk.trailing_stop))  # fmt: skip
    pass_s, out = best_of(
        args.repeat,
        lambda: portfolio_pass(*inputs, MAX_POSITIONS, sl, tp, ts, FEE, 0.0, 10_000.0),
    )
    after_s, result = best_of(
        args.repeat,
        lambda: portfolio_from_signals(
            symbols,
            bars,
            conditions,
            keys,
            strategy=args.strategy,
            params=params,
            max_positions=MAX_POSITIONS,
            rank=RANK,
            risk=risk,
            fee=FEE,
            slippage_bps=0.0,
            interval="1h",
            initial_equity=10_000.0,
        ),  # fmt: skip
    )
    whole_s, result = best_of(
        args.repeat,
        lambda: run_portfolio(
            coins, args.strategy, max_positions=MAX_POSITIONS, rank=RANK, risk=risk
        ),
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"signals (conditions and rank keys):       {signal_s:.3f} s")
    print(f"pass inputs (concatenate, union clock):   {inputs_s:.3f} s")
    print(f"pass alone (compiled, warm):              {pass_s:.3f} s")
    print(f"after the signals (inputs, pass, metrics): {after_s:.3f} s")
    print(f"whole run_portfolio:                      {whole_s:.3f} s")
    print(
        f"trades {result.metrics['num_trades']:,}, rejected "
        f"{result.rejected_signals:,}, final equity "
        f"{result.metrics['final_equity']:,.2f}, union times {len(result.time):,}"
    )
    print(f"peak RSS (this process): {peak:.0f} MB")


if __name__ == "__main__":
    main()
