"""A run's summary over its results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarize(results: Sequence[dict]) -> dict:
    """Return the run summary: beats buy & hold, median/mean, best/worst, Sharpe."""
    scored = [r for r in results if r.get("metrics")]
    returns = np.array([r["metrics"]["total_return_pct"] for r in scored], float)
    sharpes = [
        r["metrics"]["sharpe"] for r in scored if r["metrics"].get("sharpe") is not None
    ]
    beat = [
        r
        for r in scored
        # A result that never traded did not beat anything: it sat in cash.
        if (r["metrics"].get("num_trades") or 0) > 0
        and r["metrics"]["total_return_pct"] > r["metrics"]["buy_hold_return_pct"]
    ]

    def pick(index: int) -> dict:
        r = scored[index]
        return {
            "symbol": r["symbol"],
            "strategy": r["strategy"],
            "params": r.get("params", {}),
            "total_return_pct": r["metrics"]["total_return_pct"],
        }

    summary: dict = {
        "results": len(results),
        "skipped": len(results) - len(scored),
        "beat_buy_hold": len(beat),
        "median_return_pct": float(np.median(returns)) if len(returns) else None,
        "mean_return_pct": float(np.mean(returns)) if len(returns) else None,
        "mean_sharpe": float(np.mean(sharpes)) if sharpes else None,
        "best": pick(int(np.argmax(returns))) if len(returns) else None,
        "worst": pick(int(np.argmin(returns))) if len(returns) else None,
    }
    strategies = list(dict.fromkeys(r["strategy"] for r in scored))
    if len(strategies) > 1:
        summary["by_strategy"] = {
            key: summarize([r for r in scored if r["strategy"] == key])
            for key in strategies
        }
    return summary
