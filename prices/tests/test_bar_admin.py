"""The price bar admin: every page reachable, a fast count, dates, short prices."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from backtester.runs.tests.factories import random_walk
from prices.admin import EstimatedCountPaginator, price_text
from prices.models import PriceBar
from prices.services import bars_import

pytestmark = pytest.mark.django_db

URL = "/admin/prices/pricebar/"


@pytest.fixture
def bars():
    # 2024-01-01 .. 2025-05-16: more than the 10,001 bars the old count stopped at.
    bars_import(symbol="AAA", series=random_walk(12_000, seed=1))


def test_every_page_is_reachable_and_counted(admin_client, bars):
    html = admin_client.get(URL).content.decode()
    # 12,000 hourly bars and the 500 daily ones derived from them, all counted
    # (the old count stopped at 10,001 and refused the pages past 101).
    assert "12500 price bars" in html
    last = admin_client.get(URL + "?p=125")  # the oldest hundred
    assert last.status_code == 200
    assert (
        "2024-01-01" in last.content.decode() or "Jan. 1, 2024" in last.content.decode()
    )


def test_year_and_month_filters_reach_old_bars(admin_client, bars):
    html = admin_client.get(URL).content.decode()
    assert "?year=2024" in html and "?year=2025" in html
    page = admin_client.get(URL + "?year=2024&month=3").content.decode()
    assert "775 price bars" in page  # March 2024: 31 x 24 hourly + 31 daily
    page = admin_client.get(URL + "?month=2").content.decode()
    # Every February: 2024 (29 days) and 2025 (28), hourly and daily bars.
    assert f"{29 * 25 + 28 * 25} price bars" in page


def test_prices_show_their_significant_digits(admin_client, bars):
    assert price_text(0.000012345678) == "1.23457e-05"
    assert price_text(0.123456789) == "0.123457"
    assert price_text(98.7654321) == "98.7654"
    assert price_text(65432.198) == "65,432.20"
    html = admin_client.get(URL).content.decode()
    bar = PriceBar.objects.order_by("-time").first()
    assert price_text(bar.close) in html
    assert not re.search(r"\d\.\d{9,}", html)  # no float's full digits


@pytest.mark.postgres
def test_count_is_the_planners_estimate_on_postgresql(bars):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE prices_pricebar")
    paginator = EstimatedCountPaginator(PriceBar.objects.all(), 100)
    paginator.EXACT_BELOW = 10  # force the estimate for this small table
    assert abs(paginator.count - 12_000) < 1_200
