"""Risk settings outside the engine: validation, storage, the CLI and the pages.

The ranges below are the published ones, written out by hand (0 < stop < 100,
0 < target <= 1000, 0 < trailing < 100, 0 < size <= 1, direction long / short /
both), not read from the schema under test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client

from backtester.runs.compute import TRADE_COLUMNS, trade_columns
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import render_csv, render_table, risk_label
from backtester.runs.tests.factories import make_coins
from backtester.runs.trades import EXIT_REASONS, SIDES, encode, trade_labels
from backtester.runs.validation import RequestError, run_spec
from prices.selectors import bars_load
from strategies.engine import run_many
from strategies.risk import validate_risk
from strategies.types import Bars

ROOT = Path(__file__).resolve().parents[3]
OFF = {
    "stop_loss_pct": None, "take_profit_pct": None, "trailing_stop_pct": None,
    "direction": "long", "position_size": 1.0,
}  # fmt: skip


def spec_risk(**fields) -> dict:
    return run_spec({"strategy": "sma_crossover", **fields}).risk.as_dict()


def refused(**fields) -> RequestError:
    with pytest.raises(RequestError) as info:
        run_spec({"strategy": "sma_crossover", **fields})
    return info.value


# ---- validation ----------------------------------------------------------------------


def test_absent_or_null_settings_are_the_defaults():
    assert spec_risk() == OFF
    nulls = dict.fromkeys(OFF)
    assert spec_risk(**nulls) == OFF
    assert run_spec({"strategy": "sma_crossover"}).as_dict()["risk"] == OFF


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("stop_loss_pct", 0.01, 0.01),
        ("stop_loss_pct", 99.99, 99.99),
        ("stop_loss_pct", 5, 5.0),
        ("stop_loss_pct", "5.5", 5.5),  # the CLI passes strings
        ("take_profit_pct", 0.5, 0.5),
        ("take_profit_pct", 1000, 1000.0),  # the upper limit is allowed
        ("trailing_stop_pct", 3, 3.0),
        ("trailing_stop_pct", 99.9, 99.9),
        ("position_size", 1, 1.0),  # all in is allowed
        ("position_size", 0.25, 0.25),
        ("position_size", "0.5", 0.5),
        ("direction", "short", "short"),
        ("direction", "both", "both"),
        ("direction", "long", "long"),
    ],
)
def test_values_inside_the_ranges_are_taken(field, value, stored):
    risk = spec_risk(**{field: value})
    assert risk == {**OFF, field: stored}
    assert type(risk[field]) is type(stored)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stop_loss_pct", 0),  # 0 < stop
        ("stop_loss_pct", -1),
        ("stop_loss_pct", 100),  # stop < 100: a 100% stop never fires on a long
        ("stop_loss_pct", 250),
        ("take_profit_pct", 0),
        ("take_profit_pct", 1000.5),
        ("trailing_stop_pct", 0),
        ("trailing_stop_pct", 100),
        ("position_size", 0),
        ("position_size", 1.01),
        ("position_size", -0.5),
        ("direction", "sideways"),
        ("direction", ""),  # an empty choice is no choice... see below
        ("direction", 1),
        ("stop_loss_pct", True),  # booleans are not numbers here
        ("stop_loss_pct", "five"),
        ("take_profit_pct", [10]),
        ("trailing_stop_pct", {"pct": 3}),
        ("position_size", "nan"),
        ("stop_loss_pct", float("inf")),
        # Text numbers are plain ASCII decimals: float() alone reads these.
        ("stop_loss_pct", "1_0"),
        ("take_profit_pct", "\u0661\u0660"),  # Arabic-Indic 10
        ("trailing_stop_pct", "\uff15"),  # full-width 5
        ("position_size", "0x1"),
        ("stop_loss_pct", 10**400),  # too large for a float: no OverflowError
    ],
)
def test_bad_values_are_refused_naming_their_field(field, value):
    if (field, value) == ("direction", ""):
        # "" means "not given" for every setting (what an empty form field
        # sends), so it is the default rather than an error.
        assert spec_risk(direction="") == OFF
        return
    error = refused(**{field: value})
    assert error.field == field
    assert error.errors[0][0] == field
    assert error.message.startswith(f"{field}: ")


def test_every_bad_setting_is_listed_at_once():
    error = refused(stop_loss_pct=0, direction="up", position_size=2)
    assert error.field == "stop_loss_pct"
    assert [field for field, _ in error.errors] == [
        "stop_loss_pct", "direction", "position_size"
    ]  # fmt: skip


def test_misspelt_settings_are_unknown_fields():
    assert refused(stop_loss=5).field == "stop_loss"
    assert refused(size=0.5).field == "size"


# ---- stored trades: side and exit reason as int8 codes ---------------------------


def engine_table(sides: list[str], reasons: list[str]) -> dict[str, np.ndarray]:
    """A trade table shaped like the engine's, with names for side and reason."""
    n = len(sides)
    return {
        "entry_time": np.arange(n, dtype=np.int64) * 7200,
        "exit_time": np.arange(n, dtype=np.int64) * 7200 + 3600,
        "entry_price": np.linspace(100, 110, n),
        "exit_price": np.linspace(101, 108, n),
        "return_pct": np.linspace(-3, 4, n),
        "bars_held": np.ones(n, dtype=np.int64),
        "fees": np.full(n, 2.0),
        "closed_at_end": np.array([r == "end" for r in reasons]),
        "side": np.array(sides),
        "exit_reason": np.array(reasons),
    }


def test_codes_are_the_documented_indexes():
    # The stored format: never reordered, only appended to.
    assert SIDES == ("long", "short")
    assert EXIT_REASONS == (
        "signal", "stop_loss", "take_profit", "trailing_stop", "end", "liquidation"
    )  # fmt: skip
    codes = encode(["short", "long", "short"], SIDES)
    assert codes.dtype == np.int8 and codes.tolist() == [1, 0, 1]
    assert encode(np.array([5, 0, 3]), EXIT_REASONS).tolist() == [5, 0, 3]
    with pytest.raises(ValueError, match="sideways"):
        encode(["long", "sideways"], SIDES)
    with pytest.raises(ValueError, match="outside"):
        encode(np.array([0, 6]), EXIT_REASONS)


@pytest.mark.django_db
def test_sides_and_reasons_survive_a_database_round_trip():
    sides = ["long", "short", "short", "long", "short", "long"]
    reasons = list(EXIT_REASONS)
    columns = trade_columns(engine_table(sides, reasons))
    assert list(columns) == list(TRADE_COLUMNS)
    assert columns["side"].dtype == np.int8 == columns["exit_reason"].dtype
    run = BacktestRun.objects.create(strategies=[{"strategy": "sma_crossover"}])
    BacktestResult.objects.create(
        run=run, symbol="AAA", strategy="sma_crossover", trades=columns
    )
    stored = BacktestResult.objects.get(run=run).trades
    assert trade_labels(stored) == (sides, reasons)
    assert stored["entry_price"].tolist() == columns["entry_price"].tolist()
    # Only the latest trades are kept, their labels with them.
    latest = trade_columns(engine_table(sides, reasons), limit=2)
    assert trade_labels(latest) == (sides[-2:], reasons[-2:])


def test_trades_without_sides_are_long_and_left_on_a_signal_or_at_the_end():
    table = engine_table(["long"] * 3, ["signal", "signal", "end"])
    del table["side"], table["exit_reason"]
    columns = trade_columns(table)
    assert trade_labels(columns) == (["long"] * 3, ["signal", "signal", "end"])
    # A result stored before the columns existed reads the same way.
    del columns["side"], columns["exit_reason"]
    assert trade_labels(columns) == (["long"] * 3, ["signal", "signal", "end"])


# ---- the command line ----------------------------------------------------------------


@pytest.fixture
def coins():
    make_coins(["AAA", "BBB"], bars=500)


def backtest(*args: str) -> str:
    out = io.StringIO()
    call_command("backtest", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-loss", "0"], "--stop-loss: must satisfy 0 < value < 100"),
        (["--stop-loss", "100"], "--stop-loss: must satisfy 0 < value < 100"),
        (["--stop-loss", "x"], "--stop-loss: expected a number"),
        (["--take-profit", "2000"], "--take-profit: must satisfy 0 < value <= 1000"),
        (["--trailing-stop", "-3"], "--trailing-stop: must satisfy 0 < value < 100"),
        (["--direction", "up"], "--direction: must be one of long, short, both"),
        (["--size", "1.5"], "--size: must satisfy 0 < value <= 1"),
        (["--size", "0"], "--size: must satisfy 0 < value <= 1"),
    ],
)
def test_bad_risk_flags_name_the_flag(coins, args, message):
    with pytest.raises(CommandError) as info:
        backtest("--strategy", "sma_crossover", "--no-save", *args)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_help_gives_each_flag_its_published_range():
    from backtester.runs.management.commands.backtest import Command

    text = " ".join(
        Command().create_parser("manage.py", "backtest").format_help().split()
    )
    assert "--stop-loss PCT Exit when the price moves" in text
    assert "0 < PCT < 100; default off" in text  # stop and trailing stop
    assert text.count("0 < PCT < 100; default off") == 2
    assert "0 < PCT <= 1000; default off" in text
    assert "--size FRACTION" in text and "0 < FRACTION <= 1; default 1." in text
    assert "--direction long|short|both" in text and "Default: long." in text


@pytest.mark.django_db(transaction=True)
def test_several_bad_flags_are_named_in_one_line(coins):
    with pytest.raises(CommandError) as info:
        backtest("--strategy", "sma_crossover", "--stop-loss", "0", "--size", "2")
    text = str(info.value)
    assert text.startswith("--stop-loss: ") and "; --size: " in text
    assert not BacktestRun.objects.exists()  # nothing stored for a bad request


def test_a_bad_flag_exits_non_zero_with_one_line(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "backtest", "--strategy", "sma_crossover",
         "--trailing-stop", "100"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "--trailing-stop: must satisfy 0 < value < 100" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_json_carries_the_default_risk_next_to_params(coins):
    payload = json.loads(
        backtest("--strategy", "sma_crossover", "--format", "json", "--size", "1",
                 "--direction", "long")
    )  # fmt: skip
    assert payload["run"]["risk"] == OFF
    for result in payload["results"]:
        assert list(result)[:4] == ["symbol", "strategy", "params", "risk"]
        assert result["risk"] == OFF
    assert BacktestRun.objects.get().risk == OFF


# ---- the run page --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_form_has_a_risk_group_off_by_default(client):
    html = client.get("/").content.decode()
    group = re.search(r'<details class="risk" id="risk">(.*?)</details>', html, re.S)
    assert group, "no risk group"
    body = group.group(1)  # a closed <details>: nothing is on until opened
    assert 'id="risk-state">off<' in body

    def attrs(name: str) -> str:
        match = re.search(rf'<(?:input|select) id="{name}"[^>]*>', body)
        assert match, name
        return match.group(0)

    # Each number with its published range, open or closed at each end.
    for name, low, high, high_open in [
        ("stop_loss_pct", "0", "100", True),
        ("take_profit_pct", "0", "1000", False),
        ("trailing_stop_pct", "0", "100", True),
        ("position_size", "0", "1", False),
    ]:
        tag = attrs(name)
        assert f'min="{low}"' in tag and f'max="{high}"' in tag, tag
        assert "data-min-open" in tag
        assert ("data-max-open" in tag) == high_open, tag
        assert 'value="' not in tag  # empty: off (the size is 1 unless typed)
    assert 'placeholder="off"' in attrs("stop_loss_pct")
    assert 'data-default="1.0"' in attrs("position_size")
    options = re.findall(r'<option value="(\w+)"( selected)?>', body)
    assert options == [("long", " selected"), ("short", ""), ("both", "")]
    # A unit and a one-line explanation for each.
    assert body.count('<span class="unit">(%)</span>') == 3
    assert "(fraction of equity)" in body
    assert body.count('<p class="help" id="') == 5


# ---- the websocket -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_websocket_names_a_bad_setting_and_stays_open(coins):
    from channels.testing import WebsocketCommunicator

    from backtester.asgi import application

    socket = WebsocketCommunicator(
        application,
        "/ws/backtests/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    assert (await socket.connect())[0]
    try:
        base = {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
        for field, value in [
            ("stop_loss_pct", 100),
            ("take_profit_pct", -1),
            ("trailing_stop_pct", "3%"),
            ("direction", "up"),
            ("position_size", 0),
        ]:
            await socket.send_json_to({**base, field: value})
            reply = await socket.receive_json_from(timeout=10)
            assert reply["type"] == "error" and reply["field"] == field, reply
            assert reply["message"].startswith(f"{field}: ")
        await socket.send_json_to({**base, "stop_loss_pct": 0, "position_size": 2})
        reply = await socket.receive_json_from(timeout=10)
        assert [field for field, _ in reply["errors"]] == [
            "stop_loss_pct", "position_size"
        ]  # fmt: skip
        # Still open: a good request runs, and the run records its settings.
        await socket.send_json_to({**base, "direction": "long", "position_size": 1})
        start = await socket.receive_json_from(timeout=10)
        assert start["type"] == "start", start
        result = await socket.receive_json_from(timeout=10)
        assert result["data"]["risk"] == OFF
        assert (await socket.receive_json_from(timeout=10))["type"] == "complete"
        run = await BacktestRun.objects.aget(pk=start["run_id"])
        assert run.risk == OFF
    finally:
        await socket.disconnect()
        # The ORM call above opened a connection in asgiref's thread; left open
        # it would keep PostgreSQL from dropping the test database.
        await sync_to_async(connections.close_all)()


# ---- table and CSV -------------------------------------------------------------------


def result(symbol: str, total: float, risk: dict, **metrics) -> dict:
    return {
        "symbol": symbol, "strategy": "sma_crossover", "params": {"fast": 5},
        "risk": risk, "first_bar": None, "last_bar": None, "bars": 10,
        "metrics": {"total_return_pct": total, "buy_hold_return_pct": 1.0,
                    "num_trades": 3, **metrics},
    }  # fmt: skip


def test_table_names_the_settings_only_when_some_are_set():
    summary = {"results": 2, "skipped": 0, "beat_buy_hold": 1}
    plain = render_table([result("AAA", 2.0, OFF), result("BBB", 1.0, OFF)], summary)
    assert "risk" not in plain.splitlines()[0]
    risky = {**OFF, "direction": "both", "stop_loss_pct": 5.0,
             "trailing_stop_pct": 2.5, "position_size": 0.5}  # fmt: skip
    lines = render_table([result("AAA", 2.0, risky)], summary).splitlines()
    assert lines[0].split()[:3] == ["symbol", "strategy", "risk"]
    assert "both · stop 5% · trail 2.5% · size 0.5" in lines[2]
    assert risk_label({**OFF, "take_profit_pct": 1000.0}) == "target 1000%"
    assert risk_label({**OFF, "direction": "short"}) == "short"
    assert risk_label(OFF) == "" and risk_label(None) == ""


def test_csv_has_a_column_per_setting_and_the_side_metrics():
    risky = {**OFF, "direction": "short", "take_profit_pct": 10.0}
    text = render_csv(
        [result("AAA", 2.0, risky, short_trades=3, long_trades=0,
                win_rate_short_pct=66.7, exit_reasons={"take_profit": 2, "end": 1})]
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["direction"], row["take_profit_pct"]) == ("short", "10.0")
    assert (row["stop_loss_pct"], row["position_size"]) == ("", "1.0")
    assert (row["short_trades"], row["long_trades"]) == ("3", "0")
    assert row["win_rate_long_pct"] == ""  # no long trades: no win rate
    assert json.loads(row["exit_reasons"]) == {"end": 1, "take_profit": 2}


# ---- a run with risk settings, from the flags to the stored trades -------------------


@pytest.mark.django_db(transaction=True)
def test_a_both_run_with_stops_from_the_cli_to_the_stored_trades(coins):
    flags = ["--stop-loss", "2", "--take-profit", "4", "--trailing-stop", "3",
             "--direction", "both", "--size", "0.5"]  # fmt: skip
    payload = json.loads(
        backtest("--strategy", "sma_crossover", "--param", "fast=5",
                 "--param", "slow=20", "--format", "json", *flags)
    )  # fmt: skip
    risk = {"stop_loss_pct": 2.0, "take_profit_pct": 4.0, "trailing_stop_pct": 3.0,
            "direction": "both", "position_size": 0.5}  # fmt: skip
    assert payload["run"]["risk"] == risk
    run = BacktestRun.objects.get(pk=payload["run"]["id"])
    assert run.risk == risk
    for item in payload["results"]:
        assert item["risk"] == risk
        metrics = item["metrics"]
        assert metrics["long_trades"] + metrics["short_trades"] == metrics["num_trades"]
        assert metrics["long_trades"] > 0 and metrics["short_trades"] > 0
        assert sum(metrics["exit_reasons"].values()) == metrics["num_trades"]
        # The stored trades (the latest ones) say the same as the engine's,
        # recomputed here from the same bars and settings.
        stored = BacktestResult.objects.get(run=run, symbol=item["symbol"]).trades
        series = bars_load([item["symbol"]])[item["symbol"]]
        (engine,) = run_many(
            Bars(*series), [("sma_crossover", {"fast": 5, "slow": 20})],
            risk=validate_risk(risk),
        )  # fmt: skip
        table = engine.trade_table
        keep = min(len(table["side"]), 100)
        assert len(stored["side"]) == keep
        sides, reasons = trade_labels(stored)
        assert sides == [str(s) for s in table["side"][-keep:]]
        assert reasons == [str(r) for r in table["exit_reason"][-keep:]]
        assert {"stop_loss", "take_profit", "trailing_stop"} & set(reasons)
    # Exported from the pages with the same settings.
    exported = json.loads(Client().get(f"/runs/{run.pk}/export.json").content)
    assert exported["run"]["risk"] == risk
    assert all(r["risk"] == risk for r in exported["results"])
    # The table names them too.
    table = backtest("--strategy", "sma_crossover", "--no-save", *flags)
    assert "both · stop 2% · target 4% · trail 3% · size 0.5" in table


# ---- the run detail page -------------------------------------------------------------


@pytest.mark.django_db
def test_detail_page_shows_settings_sides_and_exit_reasons(client):
    make_coins(["AAA"], bars=50)
    risk = {**OFF, "direction": "both", "stop_loss_pct": 5.0, "take_profit_pct": 10.0}
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {"fast": 5, "slow": 9}}],
        symbols=["AAA"], status=BacktestRun.Status.COMPLETE, risk=risk,
    )  # fmt: skip
    sides = ["long", "short", "long", "short"]
    reasons = ["stop_loss", "take_profit", "signal", "end"]
    metrics = {
        "total_return_pct": 3.0, "buy_hold_return_pct": 1.0, "num_trades": 4,
        "long_trades": 2, "short_trades": 2, "win_rate_long_pct": 50.0,
        "win_rate_short_pct": 100.0,
        "exit_reasons": {"signal": 1, "stop_loss": 1, "take_profit": 1,
                         "trailing_stop": 0, "end": 1, "liquidation": 0},
    }  # fmt: skip
    BacktestResult.objects.create(
        run=run, symbol="AAA", strategy="sma_crossover", params={"fast": 5, "slow": 9},
        bars=50, metrics=metrics, total_return_pct=3.0, buy_hold_return_pct=1.0,
        num_trades=4, trades=trade_columns(engine_table(sides, reasons)),
    )  # fmt: skip
    html = client.get(f"/runs/{run.pk}/").content.decode()
    label = "both · stop 5% · target 10%"
    assert f'<dd id="run-risk">{label}</dd>' in html
    assert f'<td class="risk-cell" data-sort="{label}">{label}</td>' in html
    # The line of trades by side and exits by reason (unused reasons left out).
    line = html.index('id="side-line"')
    side_line = html[html.index(">", line) + 1 : html.index("</p>", line)]
    assert re.sub(r"<[^>]+>|\s+", " ", side_line).split() == [
        "▲", "Long", "2", "win", "50.0%", "▼", "Short", "2", "win", "100.0%",
        "Exits", "signal", "1", "·", "stop", "1", "·", "target", "1", "·", "end", "1",
    ]  # fmt: skip


@pytest.mark.django_db
def test_a_plain_long_result_has_no_side_line(client):
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {}}], symbols=["AAA"]
    )
    metrics = {
        "total_return_pct": 1.0, "num_trades": 1, "long_trades": 1,
        "short_trades": 0, "exit_reasons": {"signal": 1, "stop_loss": 0},
    }  # fmt: skip
    BacktestResult.objects.create(
        run=run, symbol="AAA", strategy="sma_crossover", bars=5, metrics=metrics,
        total_return_pct=1.0, num_trades=1,
    )  # fmt: skip
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="side-line"' not in html and 'id="run-risk">long, all in' in html
    assert "risk-cell" not in html
