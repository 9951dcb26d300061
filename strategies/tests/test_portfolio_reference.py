"""Portfolio runs on real candles against a plain-loop reference account.

The reference below walks the union of the coins' bar times with dictionaries
and Python floats, reading the rules as the README states them; the coins'
conditions come from the plain reference rules (``reference.side_rules``),
not from the vectorized signals. Six coins over about 5,000 hours: two that
start later, one with a hole of 300 bars and one whose bars end early.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from strategies.portfolio import run_portfolio
from strategies.registry import STRATEGIES, validate_params
from strategies.risk import Risk
from strategies.tests import reference as ref
from strategies.tests.realdata import load_bars
from strategies.types import Bars

FEE, SLIPPAGE = 0.001, 2.0
RTOL = 1e-9
START = 1_685_577_600  # 2023-06-01T00:00Z
END = 1_703_980_800  # 2023-12-31T00:00Z
HOUR = 3600
RISKS = [
    Risk(),
    Risk(stop_loss_pct=3.0),
    Risk(stop_loss_pct=4.0, take_profit_pct=6.0, trailing_stop_pct=2.0),
    Risk(take_profit_pct=3.0),
    Risk(trailing_stop_pct=1.5),
]


def window(bars: Bars, start: int, end: int) -> Bars:
    keep = (bars.time >= start) & (bars.time < end)
    return Bars(*(column[keep] for column in bars))


@functools.cache
def basket(directory) -> dict[str, Bars]:
    """Return six coins whose bar times differ: later starts, a hole, an early end."""

    def coin(symbol: str, start: int = START, end: int = END) -> Bars:
        return window(load_bars(directory, symbol), start, end)

    ada = coin("ADA")
    hole = np.ones(len(ada.time), dtype=bool)
    hole[2000:2300] = False
    return {
        "BTC": coin("BTC"),
        "ETH": coin("ETH", start=START + 1000 * HOUR),
        "SOL": coin("SOL"),
        "ADA": Bars(*(column[hole] for column in ada)),
        "XRP": coin("XRP", end=END - 900 * HOUR),
        "DOGE": coin("DOGE", start=START + 2500 * HOUR),
    }


# -- the reference -----------------------------------------------------------------


def rank_values(rank: str, bars: Bars) -> list[tuple]:
    """Return the sort key at each close: defined values first, best first."""
    close = bars.close.tolist()
    volume = bars.volume.tolist()
    undefined = (1, 0.0)
    if rank == "symbol":
        return [(0, 0.0)] * len(close)
    if rank == "roc_24":
        return [
            undefined if i < 24 else (0, -(close[i] / close[i - 24] - 1.0))
            for i in range(len(close))
        ]
    if rank == "rsi_14":
        return [undefined if math.isnan(v) else (0, v) for v in ref.rsi(close, 14)]
    assert rank == "volume_24"
    return [
        undefined
        if i < 23
        else (0, -sum(volume[j] * close[j] for j in range(i - 23, i + 1)))
        for i in range(len(close))
    ]


def reference_portfolio(coins, rules, *, max_positions, rank, risk, fee, slippage):
    """Return (curve, counts, trades, fees, rejected) of the account, bar by bar."""
    slip = slippage / 10_000
    sl, tp, ts = risk.stop_loss, risk.take_profit, risk.trailing_stop
    symbols = sorted(coins)
    rows = {
        s: {int(t): i for i, t in enumerate(coins[s].time.tolist())} for s in symbols
    }
    clock = sorted({t for s in symbols for t in rows[s]})
    keys = {s: rank_values(rank, coins[s]) for s in symbols}
    cash = 10_000.0
    held: dict[str, dict] = {}
    wants: dict[str, tuple] = {}  # symbol -> ("exit",) or ("entry", key)
    fresh = dict.fromkeys(symbols, True)  # False: a "while" rule awaits a false close
    last_close: dict[str, float] = {}
    curve, counts, trades = [], [], []
    fees, rejected = 0.0, 0

    def sell(s, i, fill, reason, held_bars):
        nonlocal cash, fees
        p = held.pop(s)
        cash += p["units"] * fill * (1 - fee)
        fees += p["units"] * fill * fee
        trades.append(
            (s, p["time"], int(coins[s].time[i]), reason, p["price"], fill,
             p["units"], held_bars)
        )  # fmt: skip

    for t in clock:
        here = [s for s in symbols if t in rows[s]]
        before = curve[-1] if curve else 10_000.0
        for s in here:
            if wants.get(s, ("",))[0] == "exit":
                i = rows[s][t]
                sell(s, i, coins[s].open[i] * (1 - slip), "signal",
                     i - held[s]["index"])  # fmt: skip
                del wants[s]
        queue = sorted(
            (wants[s][1], s) for s in here if wants.get(s, ("",))[0] == "entry"
        )
        for _, s in queue:
            del wants[s]
            stake = min(cash, before / max_positions)
            if len(held) >= max_positions or stake < 1:
                rejected += 1
                continue
            i = rows[s][t]
            price = coins[s].open[i] * (1 + slip)
            units = stake / (price * (1 + fee))
            cash -= stake
            fees += units * price * fee
            held[s] = {"units": units, "price": price, "index": i,
                       "time": t, "best": price}  # fmt: skip
        counts.append(len(held))
        for s in here:
            bars, i = coins[s], rows[s][t]
            last_close[s] = bars.close[i]
            if s in held and (sl or tp or ts):
                p = held[s]
                stop = p["price"] * (1 - sl) if sl else None
                trail = (1 - ts) * p["best"] if ts else None
                levels = [x for x in (stop, trail) if x is not None]
                level = max(levels) if levels else None
                kind = (
                    "trailing_stop"
                    if trail is not None and (stop is None or trail > stop)
                    else "stop_loss"
                )
                target = p["price"] * (1 + tp) if tp else None
                later = i > p["index"]
                o = bars.open[i]
                fill = None
                if later and level is not None and o <= level:
                    fill, reason = o, kind
                elif later and target is not None and o >= target:
                    fill, reason = o, "take_profit"
                elif level is not None and bars.low[i] <= level:
                    fill, reason = level, kind
                elif target is not None and bars.high[i] >= target:
                    fill, reason = target, "take_profit"
                if fill is not None:
                    sell(s, i, fill * (1 - slip), reason, i + 1 - p["index"])
                    fresh[s] = rules[s][0] != "while"
            rule = rules[s]
            entry = rule[1][i]
            exit_ = (not rule[1][i]) if rule[0] == "while" else rule[2][i]
            if i == len(bars.time) - 1:
                if s in held:
                    sell(s, i, bars.close[i], "end", i + 1 - held[s]["index"])
            elif s in held:
                if exit_ and not entry:
                    wants[s] = ("exit",)
                held[s]["best"] = max(held[s]["best"], bars.high[i])
            elif not fresh[s]:
                fresh[s] = not entry
            elif entry:
                wants[s] = ("entry", (*keys[s][i], s))
        curve.append(cash + sum(h["units"] * last_close[s] for s, h in held.items()))
    return clock, curve, counts, trades, fees, rejected


# -- the comparison ------------------------------------------------------------------


@functools.cache
def rules_of(directory, strategy: str) -> dict:
    params = validate_params(strategy, {})
    return {
        s: ref.side_rules(
            strategy, params, bars.high.tolist(), bars.low.tolist(), bars.close.tolist()
        )[1]  # fmt: skip
        for s, bars in basket(directory).items()
    }


@pytest.mark.parametrize("rank", ["symbol", "roc_24", "rsi_14", "volume_24"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_portfolio_matches_the_reference_account(real_data_dir, strategy, rank):
    coins = basket(real_data_dir)
    rules = rules_of(real_data_dir, strategy)
    offset = list(STRATEGIES).index(strategy)
    for k, max_positions in enumerate((1, 2, 5)):
        risk = RISKS[(offset + k) % len(RISKS)]
        clock, curve, counts, trades, fees, rejected = reference_portfolio(
            coins, rules, max_positions=max_positions, rank=rank, risk=risk,
            fee=FEE, slippage=SLIPPAGE,
        )  # fmt: skip
        result = run_portfolio(
            coins, strategy, max_positions=max_positions, rank=rank, risk=risk,
            fee=FEE, slippage_bps=SLIPPAGE,
        )  # fmt: skip
        table = result.trades
        got = sorted(
            zip(table["symbol"].tolist(), table["entry_time"].tolist(),
                table["exit_time"].tolist(), table["exit_reason"].tolist(),
                strict=True)
        )  # fmt: skip
        want = sorted(trade[:4] for trade in trades)
        assert got == want, (strategy, rank, max_positions, risk)
        assert result.time.tolist() == clock
        assert result.positions.tolist() == counts
        assert result.rejected_signals == rejected
        np.testing.assert_allclose(result.equity, curve, rtol=RTOL)
        assert result.fees_paid == pytest.approx(fees, rel=RTOL)
        order = np.lexsort((table["entry_time"], table["symbol"]))
        mine = sorted(trades, key=lambda trade: (trade[0], trade[1]))
        np.testing.assert_allclose(
            table["entry_price"][order], [t[4] for t in mine], rtol=RTOL
        )
        np.testing.assert_allclose(
            table["exit_price"][order], [t[5] for t in mine], rtol=RTOL
        )
        np.testing.assert_allclose(table["units"][order], [t[6] for t in mine],
                                   rtol=RTOL)  # fmt: skip
        assert table["bars_held"][order].tolist() == [t[7] for t in mine]
    # The basket must exercise the account: several positions and rejections.
    assert max(counts) > 1 or max_positions == 1
