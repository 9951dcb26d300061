"""Deterministic synthetic hourly prices for the demo (pure NumPy, no ORM)."""

from __future__ import annotations

import numpy as np

from prices.types import PriceSeries

# 48 well-known coins: (symbol, name, rough start price in USDT).
DEMO_COINS = [
    ("BTC", "Bitcoin", 30000), ("ETH", "Ethereum", 2000), ("BNB", "BNB", 300),
    ("SOL", "Solana", 40), ("XRP", "XRP", 0.5), ("ADA", "Cardano", 0.4),
    ("DOGE", "Dogecoin", 0.08), ("AVAX", "Avalanche", 15), ("DOT", "Polkadot", 6),
    ("TRX", "TRON", 0.08), ("LINK", "Chainlink", 7), ("MATIC", "Polygon", 0.8),
    ("LTC", "Litecoin", 80), ("BCH", "Bitcoin Cash", 200), ("ATOM", "Cosmos", 10),
    ("UNI", "Uniswap", 6), ("XLM", "Stellar", 0.1), ("ETC", "Ethereum Classic", 18),
    ("FIL", "Filecoin", 5), ("NEAR", "NEAR Protocol", 2), ("APT", "Aptos", 8),
    ("ARB", "Arbitrum", 1.1), ("OP", "Optimism", 1.5), ("ICP", "Internet Computer", 5),
    ("VET", "VeChain", 0.02), ("ALGO", "Algorand", 0.15), ("AAVE", "Aave", 70),
    ("EGLD", "MultiversX", 40), ("SAND", "The Sandbox", 0.5),
    ("MANA", "Decentraland", 0.4),
    ("AXS", "Axie Infinity", 7), ("THETA", "Theta Network", 0.9), ("XTZ", "Tezos", 0.8),
    ("EOS", "EOS", 0.8), ("CHZ", "Chiliz", 0.08), ("CRV", "Curve DAO", 0.7),
    ("RUNE", "THORChain", 1.5), ("FTM", "Fantom", 0.3), ("GRT", "The Graph", 0.12),
    ("SNX", "Synthetix", 2.5), ("MKR", "Maker", 1200), ("KAVA", "Kava", 0.8),
    ("ZIL", "Zilliqa", 0.02), ("XMR", "Monero", 150), ("DASH", "Dash", 30),
    ("COMP", "Compound", 50), ("SUSHI", "SushiSwap", 1.0), ("1INCH", "1inch", 0.4),
]  # fmt: skip

# Coins beyond the 48 known ones are synthetic names (DEMO049 ... DEMO200), so the
# seed's scalability table (10-200 coins) runs on the same generator.
MAX_DEMO_COINS = 200
SYNTHETIC_PREFIX = "DEMO"
# The golden ratio's fractional part spreads start prices evenly over five
# decades (0.01 to 1,000 USDT) without a random draw, so they never depend on
# the seed.
_SPREAD = 0.6180339887498949

HOURS_PER_YEAR = 8760
# The last demo bar opens at 2025-12-31T23:00Z, whatever the day the demo is seeded.
ANCHOR_END = 1_767_222_000


def demo_coin(index: int) -> tuple[str, str, float]:
    """Return the (symbol, name, rough start price) of demo coin ``index`` (0-based)."""
    if not 0 <= index < MAX_DEMO_COINS:
        raise ValueError(f"index: must be between 0 and {MAX_DEMO_COINS - 1}")
    if index < len(DEMO_COINS):
        return DEMO_COINS[index]
    number = index + 1
    price = round(10 ** ((number * _SPREAD) % 1.0 * 5 - 2), 4)
    return f"{SYNTHETIC_PREFIX}{number:03d}", f"Demo coin {number}", price


def demo_coins(count: int) -> list[tuple[str, str, float]]:
    """Return the first ``count`` demo coins: the 48 known, then synthetic ones."""
    if not 1 <= count <= MAX_DEMO_COINS:
        raise ValueError(f"symbols: must be between 1 and {MAX_DEMO_COINS}")
    return [demo_coin(index) for index in range(count)]


def coin_series(index: int, bars: int, seed: int) -> PriceSeries:
    """Return one coin's hourly bars: regime-switching drift and volatility."""
    rng = np.random.default_rng([seed, index])
    start_price = demo_coin(index)[2] * rng.uniform(0.6, 1.4)
    base_vol = rng.uniform(0.004, 0.012)  # hourly: ~40-110% a year
    # Regimes of 2-10 weeks, each with its own trend and volatility.
    lengths = rng.integers(24 * 14, 24 * 70, size=bars // (24 * 14) + 2)
    regime = np.repeat(np.arange(len(lengths)), lengths)[:bars]
    drift = rng.normal(0.0, 1.2, len(lengths)) / HOURS_PER_YEAR  # annual +-120%
    vol = base_vol * rng.lognormal(0.0, 0.35, len(lengths))
    # Student-t shocks: fat tails like real crypto returns.
    shocks = rng.standard_t(4, bars) / np.sqrt(2.0)
    log_returns = drift[regime] + vol[regime] * shocks
    close = start_price * np.exp(np.cumsum(log_returns))
    gap = rng.normal(0.0, 0.0005, bars)
    open_ = np.r_[start_price, close[:-1]] * np.exp(gap)
    wick = vol[regime] * rng.exponential(0.6, (2, bars))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(np.log(1e6 / start_price), 0.6, bars) * (
        1 + 20 * np.abs(log_returns)
    )
    time = ANCHOR_END - 3600 * np.arange(bars - 1, -1, -1, dtype=np.int64)
    return PriceSeries(time, open_, high, low, close, volume)
