"""Runs belong to the user who started them: nobody else reads them."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from backtester.runs.models import BacktestRun
from backtester.runs.tests.factories import make_coins

pytestmark = pytest.mark.django_db(transaction=True)
QUERY = "?symbol=AAA&strategy=sma_crossover"
# Every page and download of one run (each with the query naming its result).
RUN_URLS = ["/", "/?fragment=result&", "/export.json", "/export.csv", "/trades.json",
            "/trades.csv", "/equity.json", "/price.json"]  # fmt: skip


@pytest.fixture
def users():
    User = get_user_model()
    return {
        name: User.objects.create_user(name, password="pw-" + name, is_staff=staff)
        for name, staff in (("alice", False), ("bob", False), ("root", True))
    }


def backtest(owner) -> BacktestRun:
    out = io.StringIO()
    call_command("backtest", "--strategy", "sma_crossover", "--param", "fast=5",
                 "--param", "slow=20", "--symbols", "AAA", "--format", "json",
                 stdout=out)  # fmt: skip
    run = BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])
    BacktestRun.objects.filter(pk=run.pk).update(created_by=owner)
    return run


def status(client, user, url: str) -> int:
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(url).status_code


@pytest.mark.parametrize("tail", RUN_URLS)
def test_another_user_gets_404_on_every_url_of_a_run(client, users, tail):
    make_coins(["AAA"], bars=300)
    run = backtest(users["alice"])
    url = f"/runs/{run.pk}{tail}{QUERY}".replace("&?", "&")
    assert status(client, users["alice"], url) == 200
    assert status(client, users["root"], url) == 200  # staff see every run
    assert status(client, users["bob"], url) == 404
    assert status(client, None, url) == 404  # an anonymous visitor of the demo
    # The answer for someone else's run is the answer for no run at all.
    other = f"/runs/{run.pk + 1000}{tail}{QUERY}".replace("&?", "&")
    assert status(client, users["bob"], other) == 404


def test_history_lists_own_runs_and_staff_see_all_with_owners(client, users):
    mine = BacktestRun.objects.create(strategies=[], created_by=users["alice"])
    theirs = BacktestRun.objects.create(strategies=[], created_by=users["bob"])
    ownerless = BacktestRun.objects.create(strategies=[], source="cli")

    def listed(user) -> list[int]:
        client.logout()
        if user is not None:
            client.force_login(user)
        response = client.get("/runs/")
        return [item["run"].pk for item in response.context["runs"]], response

    ids, page = listed(users["alice"])
    assert ids == [mine.pk] and "Owner" not in page.content.decode()
    ids, _ = listed(users["bob"])
    assert ids == [theirs.pk]
    # Anonymous demo visitors see the runs nobody owns (anonymous and CLI runs).
    ids, _ = listed(None)
    assert ids == [ownerless.pk]
    ids, page = listed(users["root"])
    assert ids == [ownerless.pk, theirs.pk, mine.pk]
    html = page.content.decode()
    assert '<th scope="col" class="opt">Owner</th>' in html
    assert ">alice<" in html and ">bob<" in html and "command line" in html
