from __future__ import annotations

import itertools
import logging
import sys
import threading

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from backtester.execution.handles import RunnerBusy
from backtester.execution.pool import get_runner
from backtester.library.checking import SourceRefused
from backtester.library.files import file_key, key_version, source_read
from backtester.portfolio.cli import add_portfolio_arguments, portfolio_command
from backtester.runs import events
from backtester.runs.cache import run_cached_source
from backtester.runs.models import BacktestRun
from backtester.runs.output import (
    render_csv,
    render_json,
    render_table,
    synthetic_line,
    table_header,
)
from backtester.runs.selectors import results_by_seq, run_data
from backtester.runs.services import run_cached, run_coins, run_create, run_start
from backtester.runs.validation import INTERVALS, RequestError, iso, run_spec
from prices.selectors import symbols_synthetic
from strategies.registry import STRATEGIES
from strategies.risk import RISK_PARAMS

# Risk flags (as argparse names them) and the request fields they set.
RISK_OPTIONS = {
    "stop_loss": "stop_loss_pct",
    "take_profit": "take_profit_pct",
    "trailing_stop": "trailing_stop_pct",
    "direction": "direction",
    "size": "position_size",
}
RISK_SPECS = {spec.name: spec for spec in RISK_PARAMS}
# Unsaved runs still need a unique id inside the runner.
_unsaved_ids = itertools.count(-1, -1)


def _logs_to_stderr() -> None:
    """Move log handlers that write to stdout over to stderr.

    Logs go to stdout by default (LOG_STREAM); when stdout carries JSON or CSV
    for another program, a log line there would corrupt it.
    """
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if (
                isinstance(handler, logging.StreamHandler)
                and getattr(handler, "stream", None) is sys.stdout
            ):
                handler.setStream(sys.stderr)


class Command(BaseCommand):
    help = (
        "Backtest one strategy (or all) over coins and a date range; prints a table, "
        "JSON or CSV to stdout and progress to stderr."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--strategy",
            help="Strategy key, with its parameters (default): "
            + "; ".join(
                f"{key} ("
                + ", ".join(f"{p.name}={p.default:g}" for p in spec.params)
                + ")"
                for key, spec in STRATEGIES.items()
            )
            + "; or a saved strategy's key, KEY@N for its version N.",
        )
        parser.add_argument(
            "--strategy-file",
            metavar="FILE",
            help="Run the rule-language strategy in FILE without saving it (or the "
            "run).",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="Strategy parameter, repeatable (e.g. --param fast=10).",
        )
        parser.add_argument(
            "--all-strategies",
            action="store_true",
            help="Run all six strategies with their default parameters.",
        )
        parser.add_argument(
            "--symbols",
            help="Comma-separated coin symbols (default: every active coin).",
        )
        parser.add_argument("--start", help="First bar time, inclusive (YYYY-MM-DD).")
        parser.add_argument("--end", help="Last bar time, exclusive (YYYY-MM-DD).")
        parser.add_argument(
            "--interval",
            default="1h",
            help="Bar interval: 1m, 5m, 15m, 30m, 1h (default), 4h or 1d; built "
            "from the finest stored interval that divides it.",
        )
        parser.add_argument(
            "--fee", default="0.001", help="Fee on traded notional (0.001)."
        )
        parser.add_argument(
            "--slippage-bps",
            default="0",
            help="Slippage in basis points against the trader (0).",
        )
        # Risk settings: absent flags leave the defaults (no stops, long, all in).
        # Help, metavar and range come from the published schema, whose rules
        # validate the values, as for the web form and the websocket.
        for option, field in RISK_OPTIONS.items():
            spec = RISK_SPECS[field]
            if spec.choices:
                metavar = "|".join(spec.choices)
                help = f"{spec.help} Default: {spec.default}."
            else:
                metavar = "PCT" if spec.unit == "%" else "FRACTION"
                default = "off" if spec.default is None else f"{spec.default:g}"
                limits = spec.limits().replace("value", metavar)
                help = f"{spec.help} {limits}; default {default}."
            parser.add_argument(
                "--" + option.replace("_", "-"), metavar=metavar, help=help
            )
        parser.add_argument(
            "--format",
            default="table",
            help="Output format: table (default), json or csv.",
        )
        parser.add_argument(
            "--no-save", action="store_true", help="Do not store the run."
        )
        parser.add_argument(
            "--no-cache",
            action="store_true",
            help="Compute afresh even when an identical run's results are stored.",
        )
        add_portfolio_arguments(parser)

    def _params(self, pairs: list[str]) -> dict[str, str]:
        params = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise CommandError(f"--param: expected NAME=VALUE, got {pair!r}")
            params[name.strip()] = value.strip()
        return params

    def handle(self, *args, **options) -> None:
        # Flags are validated here rather than by argparse choices/types so that
        # a bad value ends with one line naming it, not a usage dump.
        if options["format"] not in ("table", "json", "csv"):
            raise CommandError(
                f"--format: must be table, json or csv, not {options['format']!r}"
            )
        began_at = timezone.now()
        # Logs never share stdout with the output, a table included.
        _logs_to_stderr()
        if options["interval"] not in INTERVALS:
            raise CommandError(
                f"--interval: must be one of {', '.join(INTERVALS)}, "
                f"not {options['interval']!r}"
            )
        chosen = [options["strategy"], options["strategy_file"]]
        if options["all_strategies"]:
            chosen.append(True)
        if sum(1 for c in chosen if c) > 1:
            raise CommandError(
                "give one of --strategy, --strategy-file or --all-strategies"
            )
        sources, version = {}, None
        try:
            if options["strategy_file"]:
                # A file runs as it is: nothing of it is stored, the run neither
                # (a stored run must name a saved version to be replayed).
                key = file_key(options["strategy_file"])
                sources[key] = source_read(options["strategy_file"])
                options["strategy"], options["no_save"] = key, True
            elif options["strategy"]:
                options["strategy"], version = key_version(options["strategy"])
        except SourceRefused as exc:
            raise CommandError(str(exc)) from None
        if not options["all_strategies"] and not options["strategy"]:
            raise CommandError("--strategy is required (or use --all-strategies)")
        params = self._params(options["param"])
        if options["all_strategies"] and params:
            raise CommandError("--param cannot be combined with --all-strategies")
        request = {
            "strategies" if options["all_strategies"] else "strategy": "all"
            if options["all_strategies"]
            else options["strategy"],
            "params": params,
            **({"version": version} if version is not None else {}),
            "symbols": options["symbols"],
            "start": options["start"],
            "end": options["end"],
            "interval": options["interval"],
            "fee": options["fee"],
            "slippage_bps": options["slippage_bps"],
            "no_cache": options["no_cache"],
            **{
                field: options[option]
                for option, field in RISK_OPTIONS.items()
                if options[option] is not None
            },
        }
        if options["portfolio"]:
            return portfolio_command(self, request, options, message=_cli_message)
        try:
            # The command line sees every saved strategy, as the admin does.
            spec = run_spec(request, trusted=True, sources=sources)
            coins = run_coins(spec)
        except RequestError as exc:
            raise CommandError(_cli_message(exc)) from None

        cached = self._cached(spec, coins, save=not options["no_save"])
        if cached is not None:
            header, results, summary = cached
            self._write(options["format"], header, results, summary)
            if header["id"] is not None and options["format"] == "table":
                self.stdout.write(
                    f"saved as run {header['id']} "
                    f"(answered from run {header['cached_from']})"
                )
            return
        run = (
            None
            if options["no_save"]
            else run_create(spec=spec, coins=coins, source=BacktestRun.Source.CLI)
        )
        total = len(coins) * len(spec.jobs)
        progress = _Progress(self.stderr, total, enabled=sys.stderr.isatty())
        outcome: dict = {}

        def publish(event: dict) -> None:
            if event["type"] == events.LAYER_RESULTS:
                progress.advance(len(event["results"]))
            elif event["type"] == events.LAYER_FAILED:
                outcome["error"] = event["message"]

        try:
            if run:
                # Stored like a web run: owner, heartbeat, results, final status.
                handle = run_start(run=run, spec=spec, coins=coins, publish=publish)
            else:
                handle = get_runner().submit(
                    run_id=next(_unsaved_ids), spec=spec, coins=coins, publish=publish
                )
        except RunnerBusy as exc:
            raise CommandError(str(exc)) from None
        wait_complete(handle, "run", progress, outcome)
        results = [row.data for row in handle.rows]
        if all(r["bars"] == 0 for r in results):
            raise CommandError(
                "no data in range for "
                + ", ".join(c.symbol for c in coins)
                + f" ({iso(spec.start) or 'start'} .. {iso(spec.end) or 'end'})"
            )
        if run:
            run.refresh_from_db()
            header = run_data(run)
        else:
            # The record a saved run would have, so the header is the same.
            unsaved = run_create(
                spec=spec, coins=coins, source=BacktestRun.Source.CLI, save=False
            )
            unsaved.status, unsaved.elapsed_s = handle.status, handle.elapsed_s
            unsaved.created_at = began_at
            header = run_data(unsaved)
        self._write(options["format"], header, results, handle.summary)
        if run and options["format"] == "table":
            self.stdout.write(f"saved as run {run.pk}")

    @staticmethod
    def _cached(spec, coins, *, save: bool) -> tuple[dict, list, dict] | None:
        """Return (header, results, summary) of an identical stored run, as a new
        run when ``save``; None when there is none (or --no-cache)."""
        if spec.no_cache:
            return None
        if save:
            run = run_cached(spec=spec, coins=coins, source=BacktestRun.Source.CLI)
        else:
            # The record a saved run would have: it carries the fingerprint.
            unsaved = run_create(
                spec=spec, coins=coins, source=BacktestRun.Source.CLI, save=False
            )
            source = run_cached_source(unsaved.fingerprint)
            run = None
            if source is not None:
                run = unsaved
                run.status, run.cached_from, run.elapsed_s = (
                    source.status,
                    source,
                    0.0,
                )
                run.summary = source.summary
                run.created_at = timezone.now()
                items = results_by_seq(source.pk)
        if run is None:
            return None
        if save:
            items = results_by_seq(run.pk)
        header = run_data(run)
        if not save:
            header["id"] = None
        return header, [item["data"] for item in items], run.summary

    def _write(self, fmt: str, header: dict, results: list, summary: dict) -> None:
        if fmt == "json":
            self.stdout.write(render_json(header, results, summary))
        elif fmt == "csv":
            self.stdout.write(render_csv(results), ending="")
        else:
            self.stdout.write(table_header(header))
            synthetic = symbols_synthetic({r["symbol"] for r in results})
            if synthetic:
                self.stdout.write(synthetic_line(synthetic))
            self.stdout.write(render_table(results, summary), ending="")


def _cli_message(exc: RequestError) -> str:
    """Name CLI flags instead of message fields."""
    flags = {f: "--" + o.replace("_", "-") for o, f in RISK_OPTIONS.items()}
    if exc.field in flags:
        # Every bad risk flag at once, each by its own name.
        return "; ".join(
            f"{flags.get(field, field)}: {message}" for field, message in exc.errors
        )
    field = (exc.field or "").split(".")[0]
    flag = {
        "params": "--param",
        "symbols": "--symbols",
        "start": "--start",
        "end": "--end",
        "fee": "--fee",
        "slippage_bps": "--slippage-bps",
        "strategy": "--strategy",
        "strategies": "--strategy",
        "interval": "--interval",
    }.get(field)
    if not flag:
        return exc.message
    # The message names its field already ("start: ..."): say the flag instead.
    message = exc.message
    for name in (exc.field or "", field):
        if name and message.startswith(f"{name}: "):
            message = message[len(name) + 2 :]
            break
    return f"{flag}: {message}"


def wait_complete(handle, noun: str, progress: _Progress, outcome: dict) -> None:
    """Wait for a started run or sweep; Ctrl-C cancels it. Raise CommandError
    unless it completed (with the failure's message when one was published)."""
    try:
        handle.wait()
    except KeyboardInterrupt:
        handle.cancel()
        handle.wait()
        raise CommandError(f"interrupted; the {noun} was cancelled") from None
    progress.finish()
    if handle.status != "complete":
        raise CommandError(outcome.get("error") or f"the {noun} {handle.status}")


class _Progress:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, stream, total: int, *, enabled: bool) -> None:
        self.stream, self.total, self.enabled = stream, max(total, 1), enabled
        self.done = 0
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            if self.enabled:
                filled = int(30 * self.done / self.total)
                self.stream.write(
                    f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}",
                    ending="",
                )
                self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("")
