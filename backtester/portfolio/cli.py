"""``manage.py backtest --portfolio``: the options and the command's work.

The ``backtest`` command adds these options and hands a request with
``--portfolio`` here, with the request it built from the shared flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backtester.portfolio.compute import ReplayError
from backtester.portfolio.models import PortfolioRun
from backtester.portfolio.output import render_csv, render_json, render_table
from backtester.portfolio.selectors import portfolio_data, trade_rows
from backtester.portfolio.services import (
    portfolio_build,
    portfolio_create,
    portfolio_run_now,
)
from backtester.portfolio.validation import portfolio_spec
from backtester.runs.services import run_coins
from backtester.runs.validation import RequestError
from strategies.portfolio import DEFAULT_MAX_POSITIONS, MAX_POSITIONS
from strategies.portfolio_signals import RANKS

FLAGS = {"max_positions": "--max-positions", "rank": "--rank"}


def add_portfolio_arguments(parser: CommandParser) -> None:
    """Add --portfolio, --max-positions and --rank to the backtest command."""
    parser.add_argument(
        "--portfolio",
        action="store_true",
        help="Trade the strategy over the coins from one account of 10,000 "
        "(at most --max-positions open at once, long only).",
    )
    parser.add_argument(
        "--max-positions",
        metavar="N",
        help=f"Portfolio: positions open at once, 1 to {MAX_POSITIONS} "
        f"(default {DEFAULT_MAX_POSITIONS}).",
    )
    parser.add_argument(
        "--rank",
        metavar="|".join(RANKS),
        help="Portfolio: which signalled coin gets a free slot first (default symbol).",
    )


def portfolio_command(
    command: BaseCommand,
    request: dict,
    options: dict,
    *,
    message: Callable[[RequestError], str],
) -> None:
    """Validate, run, store (unless --no-save) and print one portfolio run."""
    # Portfolio runs are always computed (no stored answers): no_cache does not
    # apply to them.
    request = {k: v for k, v in request.items() if v is not None and k != "no_cache"}
    if request.get("params") == {}:
        request.pop("params")
    for name in FLAGS:
        if options.get(name) is not None:
            request[name] = options[name]
    try:
        spec = portfolio_spec(request)
        coins = run_coins(spec.run)
    except RequestError as exc:
        if exc.field in FLAGS:
            raise CommandError(
                f"{FLAGS[exc.field]}: {exc.message.removeprefix(exc.field + ': ')}"
            ) from None
        raise CommandError(message(exc)) from None
    source = PortfolioRun.Source.CLI
    if options.get("no_save"):
        run = portfolio_build(spec=spec, coins=coins, source=source)
    else:
        run = portfolio_create(spec=spec, coins=coins, source=source)

    def progress(symbol: str, completed: int, total: int) -> None:
        if sys.stderr.isatty():
            command.stderr.write(f"\rsignals {completed}/{total} {symbol:<10}", "")

    try:
        result = portfolio_run_now(run, progress=progress)
    except KeyboardInterrupt:
        raise CommandError("interrupted; the portfolio run was cancelled") from None
    except (ValueError, ReplayError) as exc:
        raise CommandError(str(exc)) from None
    if sys.stderr.isatty():
        command.stderr.write("")
    header = portfolio_data(run)
    fmt = options["format"]
    if fmt == "json":
        command.stdout.write(
            render_json(header, run.metrics, run.contributions, trade_rows(result))
        )
    elif fmt == "csv":
        command.stdout.write(render_csv(trade_rows(result)), ending="")
    else:
        command.stdout.write(render_table(header, run.metrics, run.contributions))
        if run.pk:
            command.stdout.write(f"saved as portfolio run {run.pk}")
