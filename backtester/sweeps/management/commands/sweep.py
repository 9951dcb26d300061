from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backtester.execution.handles import RunnerBusy
from backtester.library.checking import SourceRefused
from backtester.library.files import key_version
from backtester.portfolio.sweep_cli import (
    add_portfolio_sweep_arguments,
    portfolio_only,
    portfolio_sweep_command,
    stop_fields,
)
from backtester.runs.management.commands.backtest import (
    _logs_to_stderr,
    _Progress,
    wait_complete,
)
from backtester.runs.services import run_coins
from backtester.runs.validation import RequestError
from backtester.sweeps import events
from backtester.sweeps.models import Sweep
from backtester.sweeps.output import (
    render_csv,
    render_json,
    render_table,
    render_walk_forward_csv,
    render_walk_forward_table,
)
from backtester.sweeps.selectors import sweep_export
from backtester.sweeps.services import sweep_create, sweep_start
from backtester.sweeps.validation import OBJECTIVES, sweep_spec
from backtester.sweeps.walkforward import walk_forward_data, walk_forward_run
from strategies.registry import STRATEGIES

FLAGS = {
    "grid": "--grid",
    "params": "--param",
    "symbols": "--symbols",
    "start": "--start",
    "end": "--end",
    "fee": "--fee",
    "slippage_bps": "--slippage-bps",
    "strategy": "--strategy",
    "interval": "--interval",
    "objective": "--objective",
    "train_bars": "--train-bars",
    "test_bars": "--test-bars",
    "folds": "--walk-forward",
}


def _count(text: str | None, flag: str) -> int:
    """Return a positive whole number given to ``flag``."""
    if text is None:
        raise CommandError(f"{flag}: required with --walk-forward")
    try:
        value = int(text)
    except ValueError:
        raise CommandError(f"{flag}: expected a whole number, got {text!r}") from None
    if value < 1:
        raise CommandError(f"{flag}: must be at least 1, got {value}")
    return value


def axis(text: str) -> tuple[str, str]:
    """Split ``NAME=START:STOP:STEP`` (or ``NAME=V1,V2,...``) into name and spec."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise CommandError(
            f"--grid: expected NAME=START:STOP:STEP or NAME=V1,V2,..., got {text!r}"
        )
    return name, spec


class Command(BaseCommand):
    help = (
        "Sweep one strategy over a grid of parameter values x coins x one date "
        "range (or walk forward through it); prints a table, JSON or CSV."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--strategy",
            help="Strategy key: "
            + ", ".join(STRATEGIES)
            + ", or a saved strategy's key (KEY@N: its version N).",
        )
        parser.add_argument(
            "--grid",
            action="append",
            default=[],
            metavar="NAME=START:STOP:STEP",
            help="A parameter axis, inclusive, or NAME=V1,V2,... (repeatable).",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A fixed parameter not on an axis (repeatable).",
        )
        parser.add_argument(
            "--symbols", help="Comma-separated coin symbols (default: every active)."
        )
        parser.add_argument("--start", help="First bar time, inclusive (YYYY-MM-DD).")
        parser.add_argument("--end", help="Last bar time, exclusive (YYYY-MM-DD).")
        parser.add_argument(
            "--interval", default="1h", help="1m, 5m, 15m, 30m, 1h (default), 4h or 1d."
        )
        parser.add_argument("--fee", default="0.001", help="Fee on notional (0.001).")
        parser.add_argument(
            "--slippage-bps", default="0", help="Slippage in basis points (0)."
        )
        parser.add_argument(
            "--objective",
            help="What 'best' means: "
            + ", ".join(OBJECTIVES)
            + " (default median_return_pct; with --portfolio see its README section).",
        )
        parser.add_argument(
            "--walk-forward",
            type=str,
            metavar="FOLDS",
            help="Walk forward through FOLDS rolling train/test folds instead.",
        )
        parser.add_argument(
            "--train-bars", metavar="N", help="Bars in each train window."
        )
        parser.add_argument(
            "--test-bars", metavar="M", help="Bars in each test window."
        )
        parser.add_argument(
            "--format", default="table", help="table (default), json or csv."
        )
        add_portfolio_sweep_arguments(parser)

    def handle(self, *args, **options) -> None:
        fmt = options["format"]
        if fmt not in ("table", "json", "csv"):
            raise CommandError(f"--format: must be table, json or csv, not {fmt!r}")
        if fmt != "table":
            _logs_to_stderr()
        if not options["strategy"]:
            raise CommandError("--strategy is required")
        if not options["grid"]:
            raise CommandError("--grid: give at least one axis, e.g. fast=5:50:5")
        grid: dict = {}
        for text in options["grid"]:
            name, values = axis(text)
            if name in grid:
                raise CommandError(f"--grid {name}: given twice")
            grid[name] = values
        params = {}
        for pair in options["param"]:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise CommandError(f"--param: expected NAME=VALUE, got {pair!r}")
            params[name.strip()] = value.strip()
        try:
            strategy, version = key_version(options["strategy"])
        except SourceRefused as exc:
            raise CommandError(str(exc)) from None
        request = {
            "strategy": strategy,
            **({"version": version} if version is not None else {}),
            "grid": grid,
            "params": params,
            "symbols": options["symbols"],
            "start": options["start"],
            "end": options["end"],
            "interval": options["interval"],
            "fee": options["fee"],
            "slippage_bps": options["slippage_bps"],
            "objective": options["objective"],
            **stop_fields(options),
        }
        portfolio_only(options)
        if options["portfolio"]:
            if options["walk_forward"] is not None:
                raise CommandError("--walk-forward: not with --portfolio")
            return portfolio_sweep_command(self, request, options, message=_cli_message)
        try:
            spec = sweep_spec(request, trusted=True)
            coins = run_coins(spec)
        except RequestError as exc:
            raise CommandError(_cli_message(exc)) from None
        if options["walk_forward"] is None and (
            options["train_bars"] or options["test_bars"]
        ):
            raise CommandError("--train-bars and --test-bars need --walk-forward")
        if options["walk_forward"] is not None:
            self._walk_forward(spec, coins, fmt, options)
        else:
            self._sweep(spec, coins, fmt)

    def _walk_forward(self, spec, coins, fmt: str, options: dict) -> None:
        folds = _count(options["walk_forward"], "--walk-forward")
        train = _count(options["train_bars"], "--train-bars")
        test = _count(options["test_bars"], "--test-bars")
        try:
            result = walk_forward_run(
                spec=spec, coins=coins, folds=folds, train_bars=train, test_bars=test
            )
        except RequestError as exc:
            raise CommandError(_cli_message(exc)) from None
        data = walk_forward_data(result)
        if fmt == "json":
            self.stdout.write(json.dumps({"walk_forward": data}, allow_nan=False))
        elif fmt == "csv":
            self.stdout.write(render_walk_forward_csv(data), ending="")
        else:
            self.stdout.write(render_walk_forward_table(data), ending="")

    def _sweep(self, spec, coins, fmt: str) -> None:
        sweep = sweep_create(spec=spec, coins=coins, source=Sweep.Source.CLI)
        progress = _Progress(
            self.stderr, len(spec.combinations), enabled=sys.stderr.isatty()
        )
        outcome: dict = {}

        def publish(event: dict) -> None:
            if event["type"] == events.LAYER_CELLS:
                progress.advance(len(event["cells"]))
            elif event["type"] == events.LAYER_FAILED:
                outcome["error"] = event["message"]

        try:
            handle = sweep_start(sweep=sweep, coins=coins, publish=publish)
        except RunnerBusy as exc:
            raise CommandError(str(exc)) from None
        wait_complete(handle, "sweep", progress, outcome)
        sweep.refresh_from_db()
        export = sweep_export(sweep)
        if fmt == "json":
            self.stdout.write(render_json(export))
        elif fmt == "csv":
            self.stdout.write(render_csv(export), ending="")
        else:
            self.stdout.write(render_table(export), ending="")


def _cli_message(exc: RequestError) -> str:
    """Name CLI flags instead of message fields (``grid.fast`` -> --grid fast)."""
    field = exc.field or ""
    head, _, rest = field.partition(".")
    flag = FLAGS.get(head)
    if flag is None:
        return exc.message
    message = exc.message
    if message.startswith(field + ":"):
        message = message[len(field) + 1 :].strip()
    elif message.startswith(head + ":"):
        message = message[len(head) + 1 :].strip()
    return f"{flag} {rest}: {message}" if rest else f"{flag}: {message}"
