"""seed_demo beyond the 48 known coins: the seed's scalability table (to 200)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from prices.demo import demo_coins
from prices.models import Cryptocurrency, PriceBar, Source
from prices.selectors import bars_load
from prices.symbols import symbol_problem

pytestmark = pytest.mark.django_db(transaction=True)


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_two_hundred_demo_coins_are_distinct_valid_symbols():
    coins = demo_coins(200)
    symbols = [symbol for symbol, _, _ in coins]
    assert len(set(symbols)) == 200
    assert [symbol_problem(s) for s in symbols] == [None] * 200
    # The 48 known coins first, unchanged; then numbered synthetic ones.
    assert symbols[:2] == ["BTC", "ETH"] and symbols[47] == "1INCH"
    assert symbols[48] == "DEMO049" and symbols[199] == "DEMO200"
    prices = [price for _, _, price in coins[48:]]
    assert all(0.01 <= price <= 1000 for price in prices)
    assert len(set(prices)) == len(prices)  # no two synthetic coins start alike
    assert demo_coins(200) == coins  # no randomness in names or prices


def test_seed_beyond_48_makes_distinct_deterministic_demo_coins():
    out = seed("--symbols", "51", "--years", "1")
    assert "seeded 51 coins" in out
    stored = dict(Cryptocurrency.objects.values_list("symbol", "source"))
    assert len(stored) == 51
    assert {"DEMO049", "DEMO050", "DEMO051"} <= set(stored)
    assert set(stored.values()) == {Source.DEMO}
    assert PriceBar.objects.filter(interval="1h").count() == 51 * 8760
    first = bars_load(["DEMO049", "DEMO050", "DEMO051"])
    # Each synthetic coin is its own series, with valid bars.
    closes = [first[s].close for s in ("DEMO049", "DEMO050", "DEMO051")]
    assert not np.array_equal(closes[0], closes[1])
    assert not np.array_equal(closes[1], closes[2])
    for bars in first.values():
        assert len(bars.time) == 8760 and bars.time[-1] == 1_767_222_000
        assert np.all(bars.high >= np.maximum(bars.open, bars.close))
        assert np.all(bars.low <= np.minimum(bars.open, bars.close))
        assert np.all(bars.low > 0) and np.all(bars.volume >= 0)
    # Same seed, same bars; another seed, other bars.
    seed("--symbols", "51", "--years", "1")
    again = bars_load(["DEMO051"])["DEMO051"]
    np.testing.assert_array_equal(again.close, first["DEMO051"].close)
    np.testing.assert_array_equal(again.volume, first["DEMO051"].volume)
    seed("--symbols", "51", "--years", "1", "--seed", "7")
    other = bars_load(["DEMO051"])["DEMO051"]
    assert not np.array_equal(other.close, first["DEMO051"].close)


@pytest.mark.parametrize("count", ["0", "201", "-3"])
def test_seed_refuses_a_count_outside_1_to_200_in_one_line(count):
    with pytest.raises(CommandError) as raised:
        seed("--symbols", count, "--years", "1")
    message = str(raised.value)
    assert message == "--symbols: must be between 1 and 200"
    assert not Cryptocurrency.objects.exists()
