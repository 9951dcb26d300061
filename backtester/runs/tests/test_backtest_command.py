"""`manage.py backtest`: the three output formats, saving, and error exits."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from backtester.runs import processes
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.tests.factories import crash_engine_on, make_coins
from strategies.registry import STRATEGIES

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def coins():
    make_coins(["AAA", "BBB", "CCC"], bars=500)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("backtest", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_has_the_documented_shape(coins):
    out, _ = run(
        "--strategy", "sma_crossover", "--param", "fast=5", "--param", "slow=30",
        "--symbols", "AAA,BBB", "--format", "json",
    )  # fmt: skip
    payload = json.loads(out)
    assert set(payload) == {"run", "results", "summary"}
    assert payload["run"]["symbols"] == ["AAA", "BBB"]
    assert payload["run"]["strategies"] == [
        {"strategy": "sma_crossover", "params": {"fast": 5, "slow": 30}}
    ]
    results = payload["results"]
    assert len(results) == 2
    for result in results:
        assert set(result) >= {
            "symbol", "strategy", "params", "first_bar", "last_bar", "bars", "metrics"
        }  # fmt: skip
        assert result["first_bar"] == "2024-01-01T00:00:00Z"
        assert result["bars"] == 500
    returns = [r["metrics"]["total_return_pct"] for r in results]
    assert returns == sorted(returns, reverse=True)
    assert payload["summary"]["results"] == 2
    unsaved = json.loads(
        run(
            "--strategy", "sma_crossover", "--param", "fast=5", "--param", "slow=30",
            "--symbols", "AAA,BBB", "--format", "json", "--no-save",
        )[0]
    )  # fmt: skip
    assert list(unsaved["run"]) == list(payload["run"])
    assert unsaved["run"]["id"] is None and unsaved["run"]["created_at"].endswith("Z")
    assert unsaved["results"] == results
    saved = BacktestRun.objects.get(pk=payload["run"]["id"])
    assert saved.status == "complete" and saved.source == "cli"
    assert saved.owner == processes.identity() and saved.heartbeat_at is not None
    assert BacktestResult.objects.filter(run=saved).count() == 2


def test_all_strategies_and_date_range(coins):
    out, _ = run(
        "--all-strategies", "--start", "2024-01-05", "--end", "2024-01-15",
        "--format", "json", "--no-save",
    )  # fmt: skip
    payload = json.loads(out)
    assert len(payload["results"]) == 3 * len(STRATEGIES)
    # 10 days of hourly bars, end exclusive.
    assert {r["bars"] for r in payload["results"]} == {240}
    assert {r["first_bar"] for r in payload["results"]} == {"2024-01-05T00:00:00Z"}
    assert {r["last_bar"] for r in payload["results"]} == {"2024-01-14T23:00:00Z"}
    assert BacktestRun.objects.count() == 0


def test_csv_output(coins):
    out, _ = run("--strategy", "rsi_reversion", "--format", "csv", "--no-save")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3
    assert {"symbol", "strategy", "total_return_pct", "sharpe"} <= set(rows[0])
    assert {r["strategy"] for r in rows} == {"rsi_reversion"}


def test_table_output_is_sorted_with_a_summary(coins):
    out, _ = run("--strategy", "ema_crossover", "--no-save")
    lines = out.splitlines()[1:]  # below the line that says what was run
    assert lines[0].split()[:3] == ["symbol", "strategy", "return"]
    body = [line for line in lines[2:5]]
    returns = [float(line.split()[2]) for line in body]
    assert returns == sorted(returns, reverse=True)
    assert "3 backtests" in out and "beat buy & hold" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--strategy", "moon"], "unknown strategy"),
        (["--strategy", "sma_crossover", "--symbols", "ZZZ"], "ZZZ"),
        (["--strategy", "sma_crossover", "--param", "fast"], "NAME=VALUE"),
        (["--strategy", "sma_crossover", "--param", "fast=abc"], "fast"),
        (["--strategy", "sma_crossover", "--param", "fast=100"], "fast"),
        (["--strategy", "sma_crossover", "--start", "2030-01-01"], "no prices"),
        (["--strategy", "sma_crossover", "--start", "yesterday"], "--start"),
        (["--strategy", "sma_crossover", "--format", "xml"], "--format"),
        (["--strategy", "sma_crossover", "--fee", "lots"], "--fee"),
        ([], "--strategy"),
    ],
)
def test_bad_arguments_raise_command_error(coins, args, needle):
    with pytest.raises(CommandError, match=needle):
        run(*args, "--no-save")


def test_a_crashing_run_fails_the_command_and_is_stored(coins, monkeypatch):
    crash_engine_on(monkeypatch, "BBB")
    # The record names no exception text (the log, on stderr, has it).
    with pytest.raises(CommandError, match="internal error"):
        run("--strategy", "sma_crossover", "--format", "json")
    saved = BacktestRun.objects.get()
    assert saved.status == "failed" and saved.finished_at is not None
    assert "internal error" in saved.error and "blew up" not in saved.error


def test_bad_argument_exits_non_zero_with_one_line(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "backtest", "--strategy", "moon"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "unknown strategy" in done.stderr


def test_json_on_stdout_stays_clean_while_logs_go_to_stdout(tmp_path):
    """Logs go to stdout by default; the machine formats move them to stderr."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PATH": "/usr/bin",
        "DEBUG": "true",
        "LOG_LEVEL": "INFO",
        "LOG_STREAM": "stdout",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    manage("migrate", "-v0")
    manage("seed_demo", "--symbols", "2", "--years", "1")
    done = manage("backtest", "--strategy", "sma_crossover", "--format", "json")
    assert len(json.loads(done.stdout)["results"]) == 2
    assert "INFO prices.selectors: loaded 2 coins" in done.stderr
    # Computed again (not answered from the identical run above): it loads.
    done = manage(
        "backtest", "--strategy", "sma_crossover", "--format", "csv", "--no-cache"
    )
    assert done.stdout.splitlines()[0].startswith("symbol,")
    assert "INFO" not in done.stdout
    # The table too: stdout has the table only, the log lines go to stderr.
    done = manage("backtest", "--strategy", "sma_crossover", "--no-save", "--no-cache")
    assert "INFO" not in done.stdout and done.stdout.startswith("sma_crossover (")
    assert "INFO prices.selectors: loaded 2 coins" in done.stderr
    assert "unsaved run complete" in done.stderr and "run -1" not in done.stderr


# ---- what a new user meets first ----------------------------------------------------


def test_table_has_a_header_and_logs_never_reach_stdout(coins):
    import logging

    handler = logging.StreamHandler(sys.stdout)
    logging.getLogger("backtester").addHandler(handler)
    try:
        out, _ = run("--strategy", "sma_crossover", "--param", "fast=10",
                     "--param", "slow=30", "--symbols", "AAA,BBB",
                     "--start", "2024-01-02", "--end", "2024-01-10")  # fmt: skip
        assert handler.stream is sys.stderr  # moved off stdout, as for json/csv
    finally:
        logging.getLogger("backtester").removeHandler(handler)
    first = out.splitlines()[0]
    assert first == (
        "sma_crossover (fast=10, slow=30) \u00b7 2 coins \u00b7 2024-01-02 .. "
        "2024-01-10 \u00b7 1h \u00b7 fee 0.1% \u00b7 slippage 0 bps"
    )


def test_no_save_never_names_a_run(coins, caplog):
    caplog.set_level("INFO")
    run("--strategy", "sma_crossover", "--symbols", "AAA", "--no-save")
    text = caplog.text
    assert "unsaved run complete" in text and "run -" not in text


def test_help_lists_strategies_with_their_parameters():
    from backtester.runs.management.commands.backtest import Command

    text = " ".join(
        Command().create_parser("manage.py", "backtest").format_help().split()
    )
    assert "sma_crossover (fast=20, slow=50)" in text
    assert "rsi_reversion (period=14, lower=30, upper=70)" in text
    assert "donchian_breakout (entry=20, exit=10)" in text


def test_errors_name_the_flag_once(coins):
    with pytest.raises(CommandError) as error:
        run("--strategy", "sma_crossover", "--start", "soon")
    assert str(error.value).startswith("--start: 'soon' is not a date")
    with pytest.raises(CommandError) as error:
        run("--strategy", "sma_crossover", "--fee", "2")
    assert str(error.value) == "--fee: must be between 0 and 0.05"


def test_a_range_without_prices_is_refused_before_running(coins):
    with pytest.raises(CommandError) as error:
        run("--all-strategies", "--start", "2030-01-01", "--end", "2031-01-01")
    assert str(error.value).startswith("--start: no prices in this range; the data")
    assert not BacktestRun.objects.exists()
