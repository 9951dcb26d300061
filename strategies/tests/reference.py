"""A deliberately plain, bar-by-bar reference: indicators and a simulator written
as obvious loops, independently of the vectorized engine, to check it against."""

from __future__ import annotations

import math

NAN = float("nan")


def sma(xs, n):
    out = []
    for i in range(len(xs)):
        if i < n - 1:
            out.append(NAN)
            continue
        window = xs[i - n + 1 : i + 1]
        if all(v == window[0] for v in window):
            out.append(window[0])
        else:
            out.append(sum(window) / n)
    return out


def ema(xs, n):
    alpha = 2.0 / (n + 1)
    return _smooth(xs, n, alpha)


def _smooth(xs, n, alpha):
    out = [NAN] * len(xs)
    defined = [i for i, v in enumerate(xs) if not math.isnan(v)]
    if len(defined) < n:
        return out
    start = defined[n - 1]
    value = sum(xs[i] for i in defined[:n]) / n
    out[start] = value
    for i in range(start + 1, len(xs)):
        value = alpha * xs[i] + (1 - alpha) * value
        out[i] = value
    return out


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
            # Wilder: avg = (avg * (n - 1) + x) / n, i.e. alpha = 1/n.
            avg_gain = (1 / n) * gains[i - 1] + (1 - 1 / n) * avg_gain
            avg_loss = (1 / n) * losses[i - 1] + (1 - 1 / n) * avg_loss
        if avg_loss == 0:
            out[i] = 50.0 if avg_gain == 0 else 100.0
        else:
            out[i] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def bbands(close, n, k):
    middle = sma(close, n)
    upper, lower = [], []
    for i in range(len(close)):
        if i < n - 1:
            upper.append(NAN)
            lower.append(NAN)
            continue
        window = close[i - n + 1 : i + 1]
        mean = sum(window) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in window) / n)
        if all(v == window[0] for v in window):
            std = 0.0
        upper.append(middle[i] + k * std)
        lower.append(middle[i] - k * std)
    return upper, middle, lower


def macd(close, fast, slow, signal):
    line = [a - b for a, b in zip(ema(close, fast), ema(close, slow), strict=True)]
    return line, _smooth(line, signal, 2.0 / (signal + 1))


def prev_high(high, n):
    return [NAN if i < n else max(high[i - n : i]) for i in range(len(high))]


def prev_low(low, n):
    return [NAN if i < n else min(low[i - n : i]) for i in range(len(low))]


def gt(a, b):
    return not math.isnan(a) and not math.isnan(b) and a > b


def above(a, b, price):
    """A > B by more than 1e-12 of the price (the documented tie rule)."""
    return not math.isnan(a) and not math.isnan(b) and a - b > 1e-12 * abs(price)


def lt(a, b):
    return not math.isnan(a) and not math.isnan(b) and a < b


def targets(strategy, params, o, h, lo, c):
    """Return the 0/1 target at each close, by the rules as written."""
    n = len(c)
    if strategy in ("sma_crossover", "ema_crossover"):
        f = sma if strategy == "sma_crossover" else ema
        fast, slow = f(c, params["fast"]), f(c, params["slow"])
        return [1 if above(fast[i], slow[i], c[i]) else 0 for i in range(n)]
    if strategy == "macd_crossover":
        line, sig = macd(c, params["fast"], params["slow"], params["signal"])
        return [1 if above(line[i], sig[i], c[i]) else 0 for i in range(n)]
    if strategy == "rsi_reversion":
        r = rsi(c, params["period"])
        entry = [lt(r[i], params["lower"]) for i in range(n)]
        exit_ = [gt(r[i], params["upper"]) for i in range(n)]
    elif strategy == "bollinger_reversion":
        upper, middle, lower = bbands(c, params["period"], params["std"])
        entry = [lt(c[i], lower[i]) for i in range(n)]
        exit_ = [gt(c[i], middle[i]) for i in range(n)]
    elif strategy == "donchian_breakout":
        hh, ll = prev_high(h, params["entry"]), prev_low(lo, params["exit"])
        entry = [gt(c[i], hh[i]) for i in range(n)]
        exit_ = [lt(c[i], ll[i]) for i in range(n)]
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


def simulate(target, o, c, *, fee, slippage_bps, equity=10_000.0):
    """Walk the bars: act at the next open on the previous close's target."""
    slip = slippage_bps / 10_000
    cash, units = equity, 0.0
    curve, position, trades = [], [], []
    entry = None
    n = len(c)
    for i in range(n):
        wanted = target[i - 1] if i > 0 else 0
        if wanted == 1 and units == 0.0:
            price = o[i] * (1 + slip)
            units = cash / (price * (1 + fee))
            entry = (i, price, cash)
            cash = 0.0
        elif wanted == 0 and units > 0.0:
            price = o[i] * (1 - slip)
            cash = units * price * (1 - fee)
            trades.append(_trade(entry, i, price, units, cash, fee, at_end=False))
            units = 0.0
        position.append(1 if units > 0 else 0)
        if units > 0 and i == n - 1:
            cash = units * c[i] * (1 - fee)
            trades.append(_trade(entry, i, c[i], units, cash, fee, at_end=True))
            curve.append(cash)
        else:
            curve.append(cash if units == 0 else units * c[i])
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
        "bars_held": exit_index - index,
        "fees": units * price * fee + units * exit_price * fee,
        "closed_at_end": at_end,
    }
