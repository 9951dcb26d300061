"""The six built-in strategies written in the rule language, both sides.

Each gives the built-in's trades with its default parameters and any risk
settings (the tests check this on real candles). Parameter limits are the
built-ins' own.
"""

from __future__ import annotations

SMA_CROSSOVER = """\
# Long while the fast SMA is above the slow one, short while below.
param fast: int = 20 in 2..500     # Fast SMA length in bars.
param slow: int = 50 in 2..1000    # Slow SMA length in bars.

long when:  sma(close, fast) > sma(close, slow)
short when: sma(close, fast) < sma(close, slow)
"""

EMA_CROSSOVER = """\
# Long while the fast EMA is above the slow one, short while below.
param fast: int = 12 in 2..500     # Fast EMA length in bars.
param slow: int = 26 in 2..1000    # Slow EMA length in bars.

long when:  ema(close, fast) > ema(close, slow)
short when: ema(close, fast) < ema(close, slow)
"""

RSI_REVERSION = """\
# Buy when Wilder's RSI falls below the lower level, sell above the upper.
param period: int = 14 in 2..500          # RSI length in bars.
param lower: float = 30 in 1..99          # Enter long below this RSI.
param upper: float = 70 in 1..99          # Enter short above this RSI.

long entry:  rsi(close, period) < lower
long exit:   rsi(close, period) > upper
short entry: rsi(close, period) > upper
short exit:  rsi(close, period) < lower
"""

BOLLINGER_REVERSION = """\
# Buy below the lower band, sell above the middle; short the mirror.
param period: int = 20 in 2..500          # Band length in bars.
param std: float = 2 in 0.1..10           # Band width in standard deviations.

long entry:  close < bb_lower(close, period, std)
long exit:   close > sma(close, period)
short entry: close > bb_upper(close, period, std)
short exit:  close < sma(close, period)
"""

MACD_CROSSOVER = """\
# Long while the MACD line is above its signal line, short while below.
param fast: int = 12 in 2..500     # Fast EMA length in bars.
param slow: int = 26 in 2..1000    # Slow EMA length in bars.
param signal: int = 9 in 2..500    # Signal EMA length in bars.

long when:  macd(close, fast, slow) > macd_signal(close, fast, slow, signal)
short when: macd(close, fast, slow) < macd_signal(close, fast, slow, signal)
"""

DONCHIAN_BREAKOUT = """\
# Buy above the highest high of the previous bars, sell below the lowest low.
param entry: int = 20 in 1..500    # Breakout window in bars.
param exit: int = 10 in 1..500     # Exit window in bars.

long entry:  close > prev(highest(high, entry), 1)
long exit:   close < prev(lowest(low, exit), 1)
short entry: close < prev(lowest(low, entry), 1)
short exit:  close > prev(highest(high, exit), 1)
"""

BUILTINS: dict[str, str] = {
    "sma_crossover": SMA_CROSSOVER,
    "ema_crossover": EMA_CROSSOVER,
    "rsi_reversion": RSI_REVERSION,
    "bollinger_reversion": BOLLINGER_REVERSION,
    "macd_crossover": MACD_CROSSOVER,
    "donchian_breakout": DONCHIAN_BREAKOUT,
}
