"""Saved strategies: versions, visibility, pages, the commands, replay."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from backtester.library.models import Strategy, StrategyVersion
from backtester.library.selectors import strategies_visible, strategy_resolve
from backtester.library.services import StrategyError, strategy_delete, strategy_save
from backtester.library.tests.reference import (
    crossover_source,
    crossover_trades,
)
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.replay import cache_clear, result_replay
from backtester.runs.tests.factories import make_coins, random_walk
from strategies.rules.errors import RuleError

pytestmark = pytest.mark.django_db(transaction=True)
BARS = 400


@pytest.fixture
def coins():
    make_coins(["AAA", "BBB"], bars=BARS)
    # make_coins seeds AAA with 1, BBB with 2: the same series, for references.
    return {
        "AAA": random_walk(BARS, seed=1).close.tolist(),
        "BBB": random_walk(BARS, seed=2).close.tolist(),
    }


@pytest.fixture
def users():
    model = get_user_model()
    return {
        "alice": model.objects.create_user("alice", password="pw-alice-1"),
        "bob": model.objects.create_user("bob", password="pw-bob-1"),
        "staff": model.objects.create_user("boss", password="pw-boss-1", is_staff=True),
    }


def call(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_versions_are_numbered_immutable_and_hashed(users):
    first = strategy_save(
        key="dip", source=crossover_source(5, 20), user=users["alice"]
    )
    second = strategy_save(
        key="dip", source=crossover_source(6, 30), user=users["alice"]
    )
    assert (first.number, second.number) == (1, 2)
    text = crossover_source(5, 20)
    assert first.sha256 == hashlib.sha256(text.encode()).hexdigest()
    first.refresh_from_db()
    assert first.source == text  # the edit made a new version
    first.source = "long when: close > 1\n"
    with pytest.raises(ValueError, match="immutable"):
        first.save()
    first.refresh_from_db()
    assert first.source == text
    # The same text again is no new version.
    again = strategy_save(
        key="dip", source=crossover_source(6, 30), user=users["alice"]
    )
    assert again.pk == second.pk and StrategyVersion.objects.count() == 2


def test_an_invalid_source_writes_nothing(users):
    with pytest.raises(RuleError) as caught:
        strategy_save(
            key="bad", source="long when: smaa(close, 3) > 1\n", user=users["alice"]
        )
    assert caught.value.errors[0]["line"] == 1 and caught.value.errors[0]["col"] == 12
    assert "did you mean 'sma'" in caught.value.errors[0]["message"]
    assert not Strategy.objects.exists() and not StrategyVersion.objects.exists()


@pytest.mark.parametrize("key", ["sma_crossover", "all", "Upper", "1abc", "a b", ""])
def test_built_in_and_malformed_keys_are_refused(users, key):
    with pytest.raises(StrategyError, match="key"):
        strategy_save(key=key, source=crossover_source(5, 20), user=users["alice"])
    assert not Strategy.objects.exists()


def test_anonymous_cannot_save_and_others_cannot_add_versions(users):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(StrategyError, match="log in"):
        strategy_save(key="x", source=crossover_source(5, 20), user=AnonymousUser())
    strategy_save(key="mine", source=crossover_source(5, 20), user=users["alice"])
    with pytest.raises(StrategyError, match="taken"):
        strategy_save(key="mine", source=crossover_source(6, 20), user=users["bob"])
    assert StrategyVersion.objects.count() == 1


def test_visibility(users):
    from django.contrib.auth.models import AnonymousUser

    strategy_save(key="private", source=crossover_source(5, 20), user=users["alice"])
    strategy_save(
        key="open", source=crossover_source(5, 20), user=users["alice"], shared=True
    )
    keys = lambda user: sorted(s.key for s in strategies_visible(user))  # noqa: E731
    assert keys(users["alice"]) == ["open", "private"]
    assert keys(users["bob"]) == ["open"]
    assert keys(AnonymousUser()) == ["open"]
    assert keys(users["staff"]) == ["open", "private"]


def test_pages_404_for_another_users_private_strategy(client, users):
    strategy_save(key="private", source=crossover_source(5, 20), user=users["alice"])
    client.force_login(users["bob"])
    assert client.get("/strategies/private/edit").status_code == 404
    assert b"private" not in client.get("/strategies/").content
    client.force_login(users["alice"])
    page = client.get("/strategies/private/edit")
    assert page.status_code == 200 and b"sma(close, 5)" in page.content
    assert b"private" in client.get("/strategies/").content
    # The run form offers it to its owner only.
    assert b'"key": "private"' in client.get("/").content
    client.force_login(users["bob"])
    assert b'"key": "private"' not in client.get("/").content
    assert b'"key": "private"' not in client.get("/sweeps/").content


def test_check_endpoint_gives_line_and_column(client):
    response = client.post(
        "/strategies/check.json",
        json.dumps(
            {
                "source": "param n: int = 5 in 2..50\n\n"
                "long when: sma(close, n) > clsoe\n"
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["ok"] is False
    assert [(e["line"], e["col"]) for e in payload["errors"]] == [
        (3, 28)
    ]  # "long when: sma(close, n) > " is 27 characters
    assert "clsoe" in payload["errors"][0]["message"]
    ok = client.post(
        "/strategies/check.json",
        json.dumps(
            {
                "source": "param n: int = 5 in 2..50 step 1\n"
                "long when: sma(close, n) > close\n"
            }
        ),
        content_type="application/json",
    ).json()
    assert ok["ok"] is True
    assert ok["params"] == [
        {"name": "n", "type": "int", "default": 5, "min": 2, "max": 50,
         "help": "int from 2 to 50", "step": 1}
    ]  # fmt: skip


def test_preview_trades_match_a_plain_loop(client, coins):
    response = client.post(
        "/strategies/preview.json",
        json.dumps({"source": crossover_source(5, 20), "symbol": "AAA"}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["bars"] == BARS
    assert len(payload["trades"]["entry_time"]) == crossover_trades(coins["AAA"], 5, 20)
    assert payload["metrics"]["num_trades"] == crossover_trades(coins["AAA"], 5, 20)
    bad = client.post(
        "/strategies/preview.json",
        json.dumps({"source": "long when: close >\n", "symbol": "AAA"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "line 1" in bad.json()["error"]


def test_cli_runs_a_saved_strategy_and_replay_recomputes_its_version(coins, tmp_path):
    first = tmp_path / "v1.rules"
    first.write_text(crossover_source(5, 20))
    assert "ok: trades long" in call("strategy", "check", str(first))
    assert "version 1" in call("strategy", "save", "trend", str(first), "--shared")
    out = call(
        "backtest", "--strategy", "trend", "--symbols", "AAA,BBB", "--format", "json"
    )
    results = {r["symbol"]: r for r in json.loads(out)["results"]}
    for symbol, close in coins.items():
        assert results[symbol]["strategy"] == "trend"
        assert results[symbol]["metrics"]["num_trades"] == crossover_trades(
            close, 5, 20
        )
    run = BacktestRun.objects.get()
    version = StrategyVersion.objects.get()
    assert run.strategy_versions == {"trend": version.pk}
    # Edit: a new version with other windows; the old run still replays v1.
    second = tmp_path / "v2.rules"
    second.write_text(crossover_source(8, 40))
    assert "version 2" in call("strategy", "save", "trend", str(second))
    assert crossover_trades(coins["AAA"], 8, 40) != crossover_trades(
        coins["AAA"], 5, 20
    )
    cache_clear()
    result = BacktestResult.objects.get(run=run, symbol="AAA")
    replay = result_replay(run, result)
    assert len(replay.trades["entry_time"]) == crossover_trades(coins["AAA"], 5, 20)
    # The new version runs from now on; KEY@1 still names the old one.
    out = call(
        "backtest",
        "--strategy",
        "trend",
        "--symbols",
        "AAA",
        "--format",
        "json",
        "--no-save",
    )
    assert json.loads(out)["results"][0]["metrics"]["num_trades"] == crossover_trades(
        coins["AAA"], 8, 40
    )
    out = call(
        "backtest",
        "--strategy",
        "trend@1",
        "--symbols",
        "AAA",
        "--format",
        "json",
        "--no-save",
    )
    assert json.loads(out)["results"][0]["metrics"]["num_trades"] == crossover_trades(
        coins["AAA"], 5, 20
    )
    assert call("strategy", "export", "trend", "--version", "1") == crossover_source(
        5, 20
    )
    listed = call("strategy", "list")
    assert "sma_crossover" in listed and "trend" in listed and "v2" in listed
    shown = call("strategy", "show", "trend")
    assert "v1" in shown and "v2" in shown and "sma(close, 8)" in shown
    # Used by a run: deleting hides it (the run still replays), unused: gone.
    strategy = Strategy.objects.get(key="trend")
    assert strategy_delete(strategy=strategy, trusted=True) == "hidden"
    assert not strategies_visible(None, trusted=True).exists()
    cache_clear()
    assert len(result_replay(run, result).trades["entry_time"]) == crossover_trades(
        coins["AAA"], 5, 20
    )
    call("strategy", "save", "unused", str(first))
    assert (
        strategy_delete(strategy=Strategy.objects.get(key="unused"), trusted=True)
        == "deleted"
    )
    assert not Strategy.objects.filter(key="unused").exists()


def test_backtest_runs_a_file_without_saving(coins, tmp_path):
    path = tmp_path / "idea.rules"
    path.write_text(crossover_source(5, 20))
    out = call(
        "backtest", "--strategy-file", str(path), "--symbols", "AAA", "--format", "json"
    )
    (result,) = json.loads(out)["results"]
    assert result["metrics"]["num_trades"] == crossover_trades(coins["AAA"], 5, 20)
    assert not BacktestRun.objects.exists() and not Strategy.objects.exists()


def test_sweep_takes_a_saved_strategy(coins, tmp_path):
    path = tmp_path / "p.rules"
    path.write_text(
        "param fast: int = 5 in 2..50\nparam slow: int = 20 in 5..100\n"
        "long when: sma(close, fast) > sma(close, slow)\n"
    )
    call("strategy", "save", "swept", str(path))
    out = call(
        "sweep", "--strategy", "swept", "--grid", "fast=5:6:1",
        "--grid", "slow=20:20:1", "--symbols", "AAA", "--format", "json",
    )  # fmt: skip
    cells = {c["params"]["fast"]: c for c in json.loads(out)["cells"]}
    for fast in (5, 6):
        assert cells[fast]["trades"] == crossover_trades(coins["AAA"], fast, 20)
    from backtester.sweeps.models import Sweep

    assert Sweep.objects.get().strategy_version == StrategyVersion.objects.get()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["strategy", "show", "nothing"], "unknown strategy 'nothing'"),
        (["strategy", "export", "nothing"], "unknown strategy"),
        (["strategy", "check", "/no/such/file"], "cannot read"),
        (["backtest", "--strategy", "nothing"], "unknown strategy"),
        (["backtest", "--strategy", "x@zero"], "KEY@N"),
        (
            ["sweep", "--strategy", "nothing", "--grid", "fast=1:2:1"],
            "unknown strategy",
        ),
    ],
)
def test_cli_errors_are_one_line(args, message, coins):
    with pytest.raises(CommandError) as caught:
        call(*args)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_saved_strategy_without_short_rules_refuses_short(users):
    strategy_save(key="longonly", source=crossover_source(5, 20), user=users["alice"])
    from backtester.runs.validation import RequestError, run_spec

    with pytest.raises(RequestError) as caught:
        run_spec({"strategy": "longonly", "direction": "short"}, user=users["alice"])
    assert caught.value.field == "direction"
    with pytest.raises(RequestError, match="unknown strategy"):
        run_spec({"strategy": "longonly"}, user=users["bob"])
    spec, version_id = strategy_resolve("longonly", user=users["alice"])
    assert run_spec({"strategy": "longonly"}, user=users["alice"]).versions == {
        "longonly": version_id
    }
