"""``manage.py sweep --portfolio``: the options and the command's work.

The ``sweep`` command adds these options and hands a request with
``--portfolio`` here, with the request it built from the shared flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backtester.portfolio.sweep import (
    DEFAULT_OBJECTIVE,
    PORTFOLIO_OBJECTIVES,
    portfolio_sweep_spec,
)
from backtester.portfolio.sweep_output import render_csv, render_json, render_table
from backtester.portfolio.sweep_run import portfolio_sweep_run
from backtester.runs.services import run_coins
from backtester.runs.validation import RequestError
from strategies.params import ParamError
from strategies.portfolio import DEFAULT_MAX_POSITIONS, MAX_POSITIONS
from strategies.portfolio_signals import RANKS

# Request fields only a portfolio sweep takes, and the flags that set them.
PORTFOLIO_FLAGS = {"max_positions": "--max-positions", "rank": "--rank"}
# Stop flags (as argparse names them) and the request fields they set.
STOP_OPTIONS = {
    "stop_loss": "stop_loss_pct",
    "take_profit": "take_profit_pct",
    "trailing_stop": "trailing_stop_pct",
}
FLAGS = {
    **PORTFOLIO_FLAGS,
    **{field: "--" + o.replace("_", "-") for o, field in STOP_OPTIONS.items()},
}


def add_portfolio_sweep_arguments(parser: CommandParser) -> None:
    """Add --portfolio, --max-positions, --rank and the stop flags to sweep."""
    parser.add_argument(
        "--portfolio",
        action="store_true",
        help="Each combination is one portfolio run over the coins from one "
        "account (max_positions may be an axis: --grid max_positions=1:10:1).",
    )
    parser.add_argument(
        "--max-positions",
        metavar="N",
        help=f"Portfolio: positions open at once when not an axis, 1 to "
        f"{MAX_POSITIONS} (default {DEFAULT_MAX_POSITIONS}).",
    )
    parser.add_argument(
        "--rank",
        metavar="|".join(RANKS),
        help="Portfolio: which signalled coin gets a free slot first (default symbol).",
    )
    parser.add_argument(
        "--stop-loss", metavar="PCT", help="Stop loss in percent, for every cell."
    )
    parser.add_argument(
        "--take-profit", metavar="PCT", help="Take profit in percent, for every cell."
    )
    parser.add_argument(
        "--trailing-stop",
        metavar="PCT",
        help="Trailing stop in percent, for every cell.",
    )


def stop_fields(options: dict) -> dict:
    """Return the request fields the stop flags set (absent flags: none)."""
    return {
        field: options[option]
        for option, field in STOP_OPTIONS.items()
        if options.get(option) is not None
    }


def portfolio_only(options: dict) -> None:
    """Refuse --max-positions and --rank without --portfolio."""
    for field, flag in PORTFOLIO_FLAGS.items():
        if options.get(field) is not None and not options.get("portfolio"):
            raise CommandError(f"{flag}: only with --portfolio")


def _message(exc: RequestError, fallback: Callable[[RequestError], str]) -> str:
    """Name the flag at fault for the fields only this command mode has."""
    if exc.field in FLAGS:
        text = exc.message.removeprefix(exc.field + ": ")
        return f"{FLAGS[exc.field]}: {text}"
    return fallback(exc)


def portfolio_sweep_command(
    command: BaseCommand,
    request: dict,
    options: dict,
    *,
    message: Callable[[RequestError], str],
) -> None:
    """Validate, run and print a portfolio sweep (nothing is stored)."""
    if "version" in request:
        raise CommandError(
            "--strategy: a portfolio sweep takes a built-in strategy, not a "
            "saved version"
        )
    request = {k: v for k, v in request.items() if v is not None}
    if request.get("params") == {}:
        request.pop("params")
    request.setdefault("objective", DEFAULT_OBJECTIVE)
    if request["objective"] not in PORTFOLIO_OBJECTIVES:
        raise CommandError(
            f"--objective: must be one of {', '.join(PORTFOLIO_OBJECTIVES)} "
            f"for a portfolio sweep, not {request['objective']!r}"
        )
    for field in PORTFOLIO_FLAGS:
        if options.get(field) is not None:
            request[field] = options[field]
    try:
        spec = portfolio_sweep_spec(request)
        coins = run_coins(spec.base.run)
    except RequestError as exc:
        raise CommandError(_message(exc, message)) from None
    fmt = options["format"]

    def progress(completed: int, total: int) -> None:
        if sys.stderr.isatty():
            command.stderr.write(f"\rcells {completed}/{total}", "")

    try:
        export = portfolio_sweep_run(spec, coins, progress=progress)
    except KeyboardInterrupt:
        raise CommandError("interrupted; the portfolio sweep was stopped") from None
    except (ValueError, ParamError) as exc:
        raise CommandError(str(exc)) from None
    if sys.stderr.isatty():
        command.stderr.write("")
    if fmt == "json":
        command.stdout.write(render_json(export))
    elif fmt == "csv":
        command.stdout.write(render_csv(export), ending="")
    else:
        command.stdout.write(render_table(export), ending="")
