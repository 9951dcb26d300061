"""A deliberately plain reference: indicators, rules, a bar-by-bar simulator and
the metrics, written as obvious loops over Python floats and independently of
the vectorized code, to check it against. Slow on purpose: a window costs its
length at every bar, so long windows on long series take a second or so."""

from __future__ import annotations

import math
import statistics

NAN = float("nan")
TIE = 1e-12  # the documented tie rule: "A > B" by more than 1e-12 of the close


def defined(*values):
    return not any(math.isnan(v) for v in values)


def sma(xs, n):
    out = []
    last_nan = -1  # the index of the latest NaN so far
    for i in range(len(xs)):
        if math.isnan(xs[i]):
            last_nan = i
        window = xs[max(0, i - n + 1) : i + 1]
        if i < n - 1 or last_nan > i - n:  # too early, or a NaN in the window
            out.append(NAN)
        elif all(v == window[0] for v in window):
            out.append(window[0])  # a flat window averages to its value exactly
        else:
            out.append(sum(window) / n)
    return out


def smooth(xs, n, alpha):
    """Exponential smoothing seeded with the mean of the first n defined values."""
    out = [NAN] * len(xs)
    first = next((i for i, v in enumerate(xs) if not math.isnan(v)), len(xs))
    if first + n > len(xs) or not defined(*xs[first : first + n]):
        return out
    value = sum(xs[first : first + n]) / n
    out[first + n - 1] = value
    for i in range(first + n, len(xs)):
        value = alpha * xs[i] + (1 - alpha) * value
        out[i] = value
    return out


def ema(xs, n):
    return smooth(xs, n, 2 / (n + 1))


def rsi(close, n):
    out = [NAN] * len(close)
    if len(close) <= n:
        return out
    gains, losses = [], []
    for i in range(1, len(close)):
        change = close[i] - close[i - 1]
        gains.append(max(change, 0.0))
        losses.append(max(-change, 0.0))
    avg_gain = sum(gains[:n]) / n
    avg_loss = sum(losses[:n]) / n
    for i in range(n, len(close)):
        if i > n:
            avg_gain = (avg_gain * (n - 1) + gains[i - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[i - 1]) / n
        if avg_loss == 0:
            out[i] = 50.0 if avg_gain == 0 else 100.0
        else:
            out[i] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def bbands(close, n, k):
    middle = sma(close, n)
    upper, lower = [], []
    for i in range(len(close)):
        if math.isnan(middle[i]):
            upper.append(NAN)
            lower.append(NAN)
            continue
        window = close[i - n + 1 : i + 1]
        mean = sum(window) / n
        std = math.sqrt(sum([(v - mean) * (v - mean) for v in window]) / n)
        if all(v == window[0] for v in window):
            std = 0.0
        upper.append(middle[i] + k * std)
        lower.append(middle[i] - k * std)
    return upper, middle, lower


def macd(close, fast, slow, signal):
    line = [a - b for a, b in zip(ema(close, fast), ema(close, slow), strict=True)]
    return line, smooth(line, signal, 2 / (signal + 1))


def previous_high(high, n):
    return [NAN if i < n else max(high[i - n : i]) for i in range(len(high))]


def previous_low(low, n):
    return [NAN if i < n else min(low[i - n : i]) for i in range(len(low))]


def above(a, b, price):
    return defined(a, b) and a - b > TIE * abs(price)


def lt(a, b):
    return defined(a, b) and a < b


def gt(a, b):
    return defined(a, b) and a > b


def targets(strategy, params, high, low, close):
    """Return the 0/1 target at each close, by the rules as written."""
    n = len(close)
    if strategy in ("sma_crossover", "ema_crossover"):
        average = sma if strategy == "sma_crossover" else ema
        fast, slow = average(close, params["fast"]), average(close, params["slow"])
        return [int(above(fast[i], slow[i], close[i])) for i in range(n)]
    if strategy == "macd_crossover":
        line, sig = macd(close, params["fast"], params["slow"], params["signal"])
        return [int(above(line[i], sig[i], close[i])) for i in range(n)]
    if strategy == "rsi_reversion":
        r = rsi(close, params["period"])
        entry = [lt(r[i], params["lower"]) for i in range(n)]
        exit_ = [gt(r[i], params["upper"]) for i in range(n)]
    elif strategy == "bollinger_reversion":
        upper, middle, lower = bbands(close, params["period"], params["std"])
        entry = [above(lower[i], close[i], close[i]) for i in range(n)]
        exit_ = [above(close[i], middle[i], close[i]) for i in range(n)]
    elif strategy == "donchian_breakout":
        hh = previous_high(high, params["entry"])
        ll = previous_low(low, params["exit"])
        entry = [gt(close[i], hh[i]) for i in range(n)]
        exit_ = [lt(close[i], ll[i]) for i in range(n)]
    else:
        raise KeyError(strategy)
    state, out = 0, []
    for i in range(n):
        if state == 0 and entry[i]:
            state = 1
        elif state == 1 and exit_[i]:
            state = 0
        out.append(state)
    return out


def simulate(target, open_, close, *, fee, slippage_bps, equity=10_000.0):
    """Walk the bars: at each open act on the previous close's target."""
    slip = slippage_bps / 10_000
    cash, units, entry = equity, 0.0, None
    curve, position, trades = [], [], []
    for i in range(len(close)):
        wanted = target[i - 1] if i > 0 else 0
        if wanted == 1 and units == 0.0:
            price = open_[i] * (1 + slip)
            units = cash / (price * (1 + fee))
            entry = (i, price, cash)
            cash = 0.0
        elif wanted == 0 and units > 0.0:
            price = open_[i] * (1 - slip)
            cash = units * price * (1 - fee)
            trades.append(_trade(entry, i, price, units, cash, fee, at_end=False))
            units = 0.0
        position.append(1 if units > 0 else 0)
        if units > 0 and i == len(close) - 1:
            # Still long on the last bar: sell at its close, fee charged.
            cash = units * close[i] * (1 - fee)
            trades.append(_trade(entry, i, close[i], units, cash, fee, at_end=True))
            units = 0.0
        curve.append(cash + units * close[i])
    return curve, position, trades


def _trade(entry, exit_index, exit_price, units, proceeds, fee, *, at_end):
    index, price, cost = entry
    return {
        "entry_index": index,
        "exit_index": exit_index,
        "entry_price": price,
        "exit_price": exit_price,
        "units": units,
        "return_pct": (proceeds / cost - 1) * 100,
        # The bars held: the exit bar counts when sold at its close (the end).
        "bars_held": exit_index - index + (1 if at_end else 0),
        "fees": units * price * fee + units * exit_price * fee,
        "closed_at_end": at_end,
        "pnl": proceeds - cost,
    }


def metrics(curve, position, trades, close, periods, times=None):
    """Every metric, from the simulator's output, in plain Python.

    ``periods`` bars a year name the interval (8,760: hourly); ``times`` are
    the bars' open times in seconds (evenly spaced when not given). Annual
    figures count calendar time: the first open to the last open plus one
    interval, in 365-day years.
    """
    n = len(curve)
    year = 365 * 24 * 3600
    step = round(year / periods)
    if times is None:
        times = [i * step for i in range(n)]
    years = (times[-1] - times[0] + step) / year
    periods = n / years  # the bars a calendar year holds at this range's rate
    missing, longest_gap = 0, 0
    for before, after in zip(times[:-1], times[1:], strict=True):
        if after - before > step:
            missing += (after - before - step) // step
            longest_gap = max(longest_gap, after - before - step)
    # Nothing left (a liquidated short): nothing to gain or lose either.
    returns = [
        curve[i] / curve[i - 1] - 1 if curve[i - 1] else 0.0 for i in range(1, n)
    ]
    out = {
        "total_return_pct": (curve[-1] / curve[0] - 1) * 100,
        "buy_hold_return_pct": (close[-1] / close[0] - 1) * 100,
        "final_equity": curve[-1],
        "num_trades": len(trades),
        "exposure_pct": 100 * sum(p != 0 for p in position) / n,
    }
    out["missing_bars"] = missing
    out["longest_gap_hours"] = longest_gap / 3600
    try:
        out["cagr_pct"] = (
            ((curve[-1] / curve[0]) ** (1 / years) - 1) * 100
            if years * 365 >= 30
            else None
        )
    except OverflowError:
        out["cagr_pct"] = None
    peak, deepest, run, longest = curve[0], 0.0, 0, 0
    for value in curve:
        peak = max(peak, value)
        deepest = max(deepest, 1 - value / peak)
        run = run + 1 if value < peak else 0
        longest = max(longest, run)
    out["max_drawdown_pct"] = deepest * 100
    out["max_drawdown_duration"] = longest
    mean = statistics.fmean(returns) if returns else None
    std = statistics.stdev(returns) if len(returns) >= 2 else None
    out["volatility_ann_pct"] = None if std is None else std * periods**0.5 * 100
    out["sharpe"] = mean / std * periods**0.5 if std and std > 1e-15 else None
    downside = (
        math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
        if returns
        else 0.0
    )
    out["sortino"] = mean / downside * periods**0.5 if downside > 1e-15 else None
    cagr, dd = out["cagr_pct"], out["max_drawdown_pct"]
    out["calmar"] = cagr / dd if cagr is not None and dd > 1e-12 else None
    if trades:
        rets = [t["return_pct"] for t in trades]
        growth = math.prod(1 + r / 100 for r in rets)
        pnl = [t["pnl"] for t in trades]
        loss = -sum(p for p in pnl if p < 0)
        out.update(
            win_rate_pct=100 * sum(r > 0 for r in rets) / len(rets),
            profit_factor=sum(p for p in pnl if p > 0) / loss if loss > 0 else None,
            expectancy_pct=statistics.fmean(rets),
            # A liquidated short of size f < 1 loses more than its stake: no
            # geometric mean of a negative product.
            avg_trade_pct=None
            if any(1 + r / 100 < 0 for r in rets)
            else (growth ** (1 / len(rets)) - 1) * 100,
            best_trade_pct=max(rets),
            worst_trade_pct=min(rets),
            avg_trade_duration=statistics.fmean(t["bars_held"] for t in trades),
        )
    else:
        out.update(
            dict.fromkeys(
                ("win_rate_pct", "profit_factor", "expectancy_pct", "avg_trade_pct",
                 "best_trade_pct", "worst_trade_pct", "avg_trade_duration")
            )
        )  # fmt: skip
    for side in ("long", "short"):
        mine = [t for t in trades if t.get("side", "long") == side]
        out[f"{side}_trades"] = len(mine)
        out[f"win_rate_{side}_pct"] = (
            100 * sum(t["return_pct"] > 0 for t in mine) / len(mine) if mine else None
        )
    reasons = [
        t.get("exit_reason", "end" if t["closed_at_end"] else "signal") for t in trades
    ]
    out["exit_reasons"] = {
        name: reasons.count(name)
        for name in ("signal", "stop_loss", "take_profit", "trailing_stop", "end",
                     "liquidation")
    }  # fmt: skip
    return out


# -- risk settings: both sides, stops, targets, sizing ---------------------------


def side_rules(strategy, params, high, low, close):
    """Return {side: rule} for +1 (long) and -1 (short), as the rules read.

    A rule is ("while", condition) for the crossovers (held while it is true)
    or ("when", entry, exit) for the enter/exit strategies.
    """
    n = len(close)
    if strategy in ("sma_crossover", "ema_crossover", "macd_crossover"):
        if strategy == "macd_crossover":
            a, b = macd(close, params["fast"], params["slow"], params["signal"])
        else:
            average = sma if strategy == "sma_crossover" else ema
            a, b = average(close, params["fast"]), average(close, params["slow"])
        return {
            1: ("while", [above(a[i], b[i], close[i]) for i in range(n)]),
            -1: ("while", [above(b[i], a[i], close[i]) for i in range(n)]),
        }
    if strategy == "rsi_reversion":
        r = rsi(close, params["period"])
        low_ = [lt(r[i], params["lower"]) for i in range(n)]
        high_ = [gt(r[i], params["upper"]) for i in range(n)]
        return {1: ("when", low_, high_), -1: ("when", high_, low_)}
    if strategy == "bollinger_reversion":
        upper, middle, lower = bbands(close, params["period"], params["std"])
        return {
            1: (
                "when",
                [above(lower[i], close[i], close[i]) for i in range(n)],
                [above(close[i], middle[i], close[i]) for i in range(n)],
            ),
            -1: (
                "when",
                [above(close[i], upper[i], close[i]) for i in range(n)],
                [above(middle[i], close[i], close[i]) for i in range(n)],
            ),
        }
    assert strategy == "donchian_breakout"
    hh_entry, ll_entry = (
        previous_high(high, params["entry"]),
        previous_low(low, params["entry"]),
    )
    hh_exit, ll_exit = (
        previous_high(high, params["exit"]),
        previous_low(low, params["exit"]),
    )
    return {
        1: (
            "when",
            [gt(close[i], hh_entry[i]) for i in range(n)],
            [lt(close[i], ll_exit[i]) for i in range(n)],
        ),
        -1: (
            "when",
            [lt(close[i], ll_entry[i]) for i in range(n)],
            [gt(close[i], hh_exit[i]) for i in range(n)],
        ),
    }


def simulate_risk(
    rules,
    open_,
    high,
    low,
    close,
    *,
    fee,
    slippage_bps,
    direction="long",
    stop_loss_pct=None,
    take_profit_pct=None,
    trailing_stop_pct=None,
    position_size=1.0,
    equity=10_000.0,
):
    """Walk the bars with the risk rules, one bar at a time.

    At each open: fill what the previous close decided (an exit, an entry or
    both: a reversal). Then, while a position is held: a gap through the stop
    or the target fills at the open (not on the entry bar); else a bar
    reaching the stop fills there (before the target, and for a short before
    its liquidation price if the stop is nearer); else a short reaching its
    liquidation price is closed there with nothing left; else a bar reaching
    the target fills there. At each close the rules decide the next open.
    """
    sides = {"long": [1], "short": [-1], "both": [1, -1]}[direction]
    slip = slippage_bps / 10_000
    f = position_size
    n = len(close)
    cash = equity
    pos = 0  # +1 long, -1 short
    units = price = equity_at_entry = 0.0
    entry_bar = -1
    best = 0.0  # a long's highest high, a short's lowest low, since entry
    liquidation = math.inf
    decided = 0
    needs_fresh = {1: False, -1: False}  # a crossover after a stop or target
    dead = False
    curve, position, trades = [], [], []

    def entry_holds(side, i):
        rule = rules[side]
        if rule[0] == "while":
            return rule[1][i] and not needs_fresh[side]
        return rule[1][i]

    def exit_holds(side, i):
        rule = rules[side]
        if rule[0] == "while":
            return not rule[1][i]
        return rule[2][i]

    def close_position(i, fill, reason, *, at_end=False, during_bar=True):
        # during_bar: the fill is within bar i or at its close, so bar i was
        # held; a signal fills at bar i's open, before it.
        nonlocal cash, pos
        if pos > 0:
            cash = cash + units * fill * (1 - fee)
        elif reason == "liquidation":
            cash = 0.0
        else:
            cash = (
                equity_at_entry - units * price * fee + units * (price - fill)
                - units * fill * fee
            )  # fmt: skip
        pnl = cash - equity_at_entry
        trades.append(
            {
                "entry_index": entry_bar,
                "exit_index": i,
                "entry_price": price,
                "exit_price": fill,
                "units": units,
                # A liquidation loses all the equity E, which is 1 / f times
                # the capital committed, f E (exactly so, not as rounded).
                "return_pct": -100 / f
                if reason == "liquidation"
                else pnl / (units * price * (1 + fee)) * 100,
                "bars_held": i - entry_bar + (1 if during_bar else 0),
                "fees": units * price * fee + units * fill * fee,
                "closed_at_end": at_end,
                "pnl": pnl,
                "side": "long" if pos > 0 else "short",
                "exit_reason": reason,
            }
        )
        pos = 0

    def open_position(i, side):
        nonlocal pos, units, price, equity_at_entry, entry_bar, best, cash
        nonlocal liquidation
        price = open_[i] * (1 + slip) if side > 0 else open_[i] * (1 - slip)
        equity_at_entry = cash
        units = f * cash / (price * (1 + fee))
        if side > 0:
            cash = cash - units * price * (1 + fee)
        else:
            # Closing at x leaves E + u p (1 - fee) - u x (1 + fee).
            liquidation = (equity_at_entry + units * price * (1 - fee)) / (
                units * (1 + fee)
            )
        pos, entry_bar, best = side, i, price

    def short_fill(i, raw, reason, *, during_bar=True):
        fill = raw * (1 + slip)
        if fill >= liquidation:
            close_position(i, liquidation, "liquidation", during_bar=during_bar)
        else:
            close_position(i, fill, reason, during_bar=during_bar)

    for i in range(n):
        if dead:
            curve.append(0.0)
            position.append(0)
            continue
        if i > 0 and decided != pos:
            if pos > 0:
                close_position(i, open_[i] * (1 - slip), "signal", during_bar=False)
            elif pos < 0:
                short_fill(i, open_[i], "signal", during_bar=False)
                dead = trades[-1]["exit_reason"] == "liquidation"
            if decided != 0 and not dead:
                open_position(i, decided)
        position.append(pos)
        if pos != 0:
            side = pos
            levels = []  # (level, kind)
            if stop_loss_pct is not None:
                levels.append((price * (1 - side * stop_loss_pct / 100), "stop_loss"))
            if trailing_stop_pct is not None:
                levels.append(
                    ((1 - side * trailing_stop_pct / 100) * best, "trailing_stop")
                )
            stop = kind = None
            for level, name in levels:  # the tighter one; the fixed stop on a tie
                if stop is None or (level > stop if side > 0 else level < stop):
                    stop, kind = level, name
            target = None
            if take_profit_pct is not None:
                target = price * (1 + side * take_profit_pct / 100)
            gap = i > entry_bar
            if side > 0:
                if stop is not None and gap and open_[i] <= stop:
                    close_position(i, open_[i] * (1 - slip), kind)
                elif target is not None and gap and open_[i] >= target:
                    close_position(i, open_[i] * (1 - slip), "take_profit")
                elif stop is not None and low[i] <= stop:
                    close_position(i, stop * (1 - slip), kind)
                elif target is not None and high[i] >= target:
                    close_position(i, target * (1 - slip), "take_profit")
                else:
                    best = max(best, high[i])
            else:
                if stop is not None and gap and open_[i] >= stop:
                    short_fill(i, open_[i], kind)
                elif target is not None and gap and open_[i] <= target:
                    short_fill(i, open_[i], "take_profit")
                elif stop is not None and high[i] >= stop and stop <= liquidation:
                    short_fill(i, stop, kind)
                elif high[i] >= liquidation:
                    close_position(i, liquidation, "liquidation")
                elif target is not None and low[i] <= target:
                    short_fill(i, target, "take_profit")
                else:
                    best = min(best, low[i])
            if pos == 0:
                exit_reason = trades[-1]["exit_reason"]
                if exit_reason == "liquidation":
                    dead = True
                elif exit_reason != "signal":
                    needs_fresh[side] = True
        if pos != 0 and i == n - 1:
            # Still open on the last bar: closed at its close, fee charged.
            close_position(i, close[i], "end", at_end=True)
        if dead:
            curve.append(0.0)
            continue
        if pos > 0:
            curve.append(cash + units * close[i])
        elif pos < 0:
            curve.append(
                equity_at_entry - units * price * fee + units * (price - close[i])
            )
        else:
            curve.append(cash)
        # The close decides the next open.
        for side in sides:
            if rules[side][0] == "while" and not rules[side][1][i]:
                needs_fresh[side] = False
        if pos == 0:
            wanted = [side for side in sides if entry_holds(side, i)]
            decided = wanted[0] if len(wanted) == 1 else 0
        elif exit_holds(pos, i) and not entry_holds(pos, i):
            decided = -pos if -pos in sides and entry_holds(-pos, i) else 0
        else:
            decided = pos
    return curve, position, trades
