"""seed_demo and the prices admin."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from prices.demo import coin_series
from prices.models import Cryptocurrency, PriceBar
from prices.selectors import bars_load

pytestmark = pytest.mark.django_db(transaction=True)


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_seed_is_deterministic_valid_and_replaces():
    seed("--symbols", "3", "--years", "1")
    assert list(Cryptocurrency.objects.values_list("symbol", flat=True)) == [
        "BNB", "BTC", "ETH"
    ]  # fmt: skip
    assert PriceBar.objects.filter(interval="1h").count() == 3 * 8760
    assert PriceBar.objects.filter(interval="1d").count() == 3 * 365
    first = bars_load(["BTC"])["BTC"]
    assert first.time[-1] == 1_767_222_000  # 2025-12-31T23:00Z
    assert np.all(first.high >= np.maximum(first.open, first.close))
    assert np.all(first.low <= np.minimum(first.open, first.close))
    assert np.all(first.low > 0) and np.all(first.volume >= 0)
    seed("--symbols", "3", "--years", "1")  # re-run: same rows, no duplicates
    assert PriceBar.objects.filter(interval="1h").count() == 3 * 8760
    again = bars_load(["BTC"])["BTC"]
    np.testing.assert_array_equal(first.close, again.close)
    other = coin_series(0, 100, seed=7)
    assert not np.array_equal(other.close, coin_series(0, 100, seed=42).close)
    np.testing.assert_array_equal(other.close, coin_series(0, 100, seed=7).close)


def test_if_empty_and_bad_arguments():
    seed("--symbols", "1", "--years", "1")
    assert "not seeding" in seed("--if-empty")
    for args, needle in [
        (["--symbols", "0"], "symbols"),
        (["--symbols", "201"], "symbols"),
        (["--years", "x"], "--years"),
        (["--years", "11"], "years"),
    ]:
        with pytest.raises(CommandError, match=needle):
            seed(*args)


def test_admin_pages_and_actions(admin_client):
    seed("--symbols", "3", "--years", "1")
    response = admin_client.get("/admin/prices/cryptocurrency/")
    assert response.status_code == 200
    assert "8760" in response.content.decode().replace(",", "")
    assert admin_client.get("/admin/prices/pricebar/").status_code == 200
    assert admin_client.get("/admin/prices/pricebar/?interval=1d").status_code == 200
    btc = Cryptocurrency.objects.get(symbol="BTC")
    version = btc.data_version
    admin_client.post(
        "/admin/prices/cryptocurrency/",
        {"action": "clear_cached_prices", "_selected_action": [btc.pk]},
    )
    assert Cryptocurrency.objects.get(pk=btc.pk).data_version == version + 1
    admin_client.post(
        "/admin/prices/cryptocurrency/",
        {"action": "deactivate", "_selected_action": [btc.pk]},
    )
    assert not Cryptocurrency.objects.get(pk=btc.pk).is_active
    assert admin_client.get("/admin/prices/pricebar/add/").status_code == 403


@pytest.mark.django_db
def test_coin_changelist_stats_in_one_query_and_exact(admin_client):
    """Counts and first/last bar per coin match the bars; the changelist costs the
    same number of queries for 1 coin as for 4 (no query per row)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from prices.selectors import coins_with_stats

    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/prices/cryptocurrency/").status_code == 200
        return len(queries)

    seed("--symbols", "1", "--years", "1")
    one = changelist_queries()
    seed("--symbols", "4", "--years", "1")
    assert changelist_queries() == one
    # Daily bars are not counted; a coin without bars has 0 and no bounds.
    Cryptocurrency.objects.create(symbol="NEW", name="New coin")
    for coin in coins_with_stats():
        hourly = PriceBar.objects.filter(crypto=coin, interval="1h")
        times = sorted(hourly.values_list("time", flat=True))
        assert coin.hourly_bars == len(times)
        assert coin.first_bar == (times[0] if times else None)
        assert coin.last_bar == (times[-1] if times else None)


@pytest.mark.parametrize("symbol", ["=CMD", "<B/ONCLICK=ALERT(1)>", "btc", "B-C"])
def test_admin_refuses_a_bad_symbol_naming_it(admin_client, symbol):
    response = admin_client.post(
        "/admin/prices/cryptocurrency/add/",
        {"symbol": symbol, "name": "x", "is_active": "on"},
    )
    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors["symbol"]
    assert errors == [
        f"symbol {symbol!r} must be 1 to 20 upper-case ASCII letters or digits"
    ]
    assert not Cryptocurrency.objects.exists()
    ok = admin_client.post(
        "/admin/prices/cryptocurrency/add/", {"symbol": "BTC2", "is_active": "on"}
    )
    assert ok.status_code == 302 and Cryptocurrency.objects.get().symbol == "BTC2"


def test_the_coin_admin_shows_each_coins_gaps(admin_client):
    from prices.services import bars_import
    from prices.types import PriceSeries

    # 40 hourly bars from 2024-01-01 00:00 with hours 10-12 and 30-59 missing:
    # bars at hours 0-9, then 13-29 (shifted by 3 h), then 60-72 (by 33 h).
    n = 40
    hour = 3600
    index = np.arange(n)
    time = 1_704_067_200 + hour * (
        index + np.where(index >= 10, 3, 0) + np.where(index >= 27, 30, 0)
    )
    flat = np.full(n, 5.0)
    bars_import(symbol="HOLE", series=PriceSeries(time, flat, flat, flat, flat, flat))
    bars_import(symbol="FULL", series=PriceSeries(time[:10], *[flat[:10]] * 5))
    # The list: hours spanned less bars present, from its own query's stats.
    response = admin_client.get("/admin/prices/cryptocurrency/")
    rows = {
        coin.symbol: row
        for coin, row in zip(
            response.context["cl"].result_list,
            response.context["results"],
            strict=True,
        )
    }
    assert '<td class="field-missing_bars">33</td>' in "".join(rows["HOLE"])
    assert '<td class="field-missing_bars">0</td>' in "".join(rows["FULL"])
    # A coin's page: its gaps, longest first, by hand.
    coin = Cryptocurrency.objects.get(symbol="HOLE")
    html = admin_client.get(f"/admin/prices/cryptocurrency/{coin.pk}/change/")
    html = html.content.decode()
    assert "2 gaps (UTC)" in html
    longest = html.index("2024-01-02 05:00")  # bar 26 at hour 29; next at hour 60
    assert "2024-01-03 12:00" in html and "30</td><td>30</td>" in html
    assert longest < html.index("2024-01-01 09:00")  # then hours 10-12
    full = Cryptocurrency.objects.get(symbol="FULL")
    html = admin_client.get(f"/admin/prices/cryptocurrency/{full.pk}/change/")
    assert "every hour from the first bar to the last is present" in (
        html.content.decode()
    )
