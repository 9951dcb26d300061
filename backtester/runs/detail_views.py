"""Every trade and every bar of one result: the trade list, its CSV, and the
chart series at any zoom (recomputed on demand, see replay.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
from django.http import HttpRequest, HttpResponse, JsonResponse

from backtester.runs import series
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import csv_writer
from backtester.runs.query import QueryError, query_json, query_text
from backtester.runs.replay import Replay, ReplayError, result_replay
from backtester.runs.validation import RequestError, parse_when
from backtester.runs.views import run_or_404
from strategies import indicators as ind

# Chart points when the request names none, and the most it may ask for.
DEFAULT_POINTS = 2000
MAX_POINTS = 100_000
TRADES_PER_PAGE = 50
MAX_TRADES_PER_PAGE = 500
# Trade markers sent with the price series; a window with more is zoomed out.
MAX_MARKERS = 5000


class BadQuery(Exception):
    def __init__(self, message: str, field: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


def _error(exc: BadQuery) -> JsonResponse:
    return JsonResponse({"error": exc.message, "field": exc.field}, status=exc.status)


def result_for(run: BacktestRun, query) -> BacktestResult:
    """Return the result named by ``symbol``, ``strategy`` and optional
    ``params`` (JSON) in the query, or raise BadQuery naming the field."""
    try:
        symbol = query_text(query, "symbol").upper()
        strategy = query_text(query, "strategy")
    except QueryError as exc:
        raise BadQuery(exc.message, exc.field) from None
    if not symbol:
        raise BadQuery("symbol: required", "symbol")
    if not strategy:
        raise BadQuery("strategy: required", "strategy")
    candidates = list(
        BacktestResult.objects.filter(run=run, symbol=symbol, strategy=strategy)
        .defer("trades", "equity")
        .order_by("pk")
    )
    raw = query.get("params")
    if raw:
        try:
            params = query_json(raw, "params")
        except QueryError as exc:
            raise BadQuery(exc.message, exc.field) from None
        if not isinstance(params, dict):
            raise BadQuery("params: expected a JSON object", "params")
        # Compare as the run stored them (numbers as numbers: 20 == 20.0).
        candidates = [r for r in candidates if r.params == params]
    if not candidates:
        raise BadQuery(
            f"run {run.pk} has no result for {symbol} {strategy}"
            + (f" with params {raw}" if raw else ""),
            "symbol",
            404,
        )
    if len(candidates) > 1:
        raise BadQuery(
            f"params: run {run.pk} has {len(candidates)} results for {symbol} "
            f"{strategy}; name one with params=<json>",
            "params",
        )
    return candidates[0]


def _replay(run: BacktestRun, result: BacktestResult) -> Replay:
    try:
        return result_replay(run, result)
    except ReplayError as exc:
        raise BadQuery(str(exc), "symbol", 409) from None


def _epoch(query, name: str) -> int | None:
    try:
        value = parse_when(query.get(name) or None, name)
    except RequestError as exc:
        raise BadQuery(exc.message, name) from None
    return None if value is None else int(value.timestamp())


def _int(query, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name}: {raw!r} is not a whole number", name) from None
    if not low <= value <= high:
        raise BadQuery(f"{name}: must be between {low} and {high}", name)
    return value


def _ms(times: np.ndarray) -> list[int]:
    return (np.asarray(times, dtype=np.int64) * 1000).tolist()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- equity -------------------------------------------------------------------------


def equity_json(request: HttpRequest, run_id: int) -> JsonResponse:
    """Return strategy and buy & hold equity and drawdown over a window.

    Query: symbol, strategy, [params], [start], [end] (ISO-8601, both
    inclusive), [points] (default 2000). At most ``points`` bars come back,
    each bucket's lowest and highest equity and deepest drawdown among them;
    with ``points`` at least the bars in the window, every bar. Drawdown is
    measured from the running peak since the run's first bar, so a window
    shows the same values as the whole curve. Times are epoch milliseconds.
    """
    run = run_or_404(request, run_id)
    try:
        result = result_for(run, request.GET)
        start, end = _epoch(request.GET, "start"), _epoch(request.GET, "end")
        points = _int(request.GET, "points", DEFAULT_POINTS, 10, MAX_POINTS)
        replay = _replay(run, result)
    except BadQuery as exc:
        return _error(exc)
    cut = series.window(replay.bars.time, start, end)
    equity = replay.result.equity[cut]
    buy_hold = replay.result.buy_hold_equity[cut]
    drawdown = replay.drawdown_pct[cut]
    index = series.extremes([equity, buy_hold, drawdown], [equity, buy_hold], points)
    return JsonResponse(
        {
            "symbol": result.symbol,
            "strategy": result.strategy,
            "params": result.params,
            "bars": len(equity),
            "points": len(index),
            "downsampled": len(index) < len(equity),
            "max_drawdown_pct": result.max_drawdown_pct,
            "time": _ms(replay.bars.time[cut][index]),
            "strategy_equity": series.finite(equity[index]),
            "buy_hold": series.finite(buy_hold[index]),
            "drawdown_pct": series.finite(drawdown[index]),
        }
    )


# ---- price, indicators and trade markers ---------------------------------------


def indicators(key: str, params: dict, bars) -> dict[str, dict]:
    """Return the strategy's own indicators: overlays on the price, and panels.

    ``{"overlay": {name: values}, "panel": {"name", "lines": {...}, "levels": [...]}}``
    """
    close, p = bars.close, params
    overlay: dict[str, np.ndarray] = {}
    panel: dict | None = None
    if key == "sma_crossover":
        overlay = {f"SMA {p['fast']}": ind.sma(close, p["fast"]),
                   f"SMA {p['slow']}": ind.sma(close, p["slow"])}  # fmt: skip
    elif key == "ema_crossover":
        overlay = {f"EMA {p['fast']}": ind.ema(close, p["fast"]),
                   f"EMA {p['slow']}": ind.ema(close, p["slow"])}  # fmt: skip
    elif key == "bollinger_reversion":
        bands = ind.bbands(close, p["period"], p["std"])
        overlay = {"Upper band": bands.upper, "Middle band": bands.middle,
                   "Lower band": bands.lower}  # fmt: skip
    elif key == "donchian_breakout":
        entry, exit_ = p["entry"], p["exit"]
        overlay = {
            f"Highest high ({entry})": ind.donchian_high(bars.high, entry),
            f"Lowest low ({exit_})": ind.donchian_low(bars.low, exit_),
        }
    elif key == "rsi_reversion":
        panel = {"name": f"RSI {p['period']}",
                 "lines": {"RSI": ind.rsi(close, p["period"])},
                 "levels": [p["lower"], p["upper"]]}  # fmt: skip
    elif key == "macd_crossover":
        m = ind.macd(close, p["fast"], p["slow"], p["signal"])
        panel = {"name": f"MACD {p['fast']}/{p['slow']}/{p['signal']}",
                 "lines": {"MACD": m.macd, "Signal": m.signal, "Histogram": m.hist},
                 "levels": [0]}  # fmt: skip
    return {"overlay": overlay, "panel": panel}


def price_json(request: HttpRequest, run_id: int) -> JsonResponse:
    """Return candles, the strategy's indicators and the trades over a window.

    Query as for equity.json. Up to ``points`` candles: bars merged into
    coarser candles when the window holds more; indicators are taken at each
    candle's first bar. Trades whose entry or exit falls in the window are
    listed (up to MAX_MARKERS, the latest kept).
    """
    run = run_or_404(request, run_id)
    try:
        result = result_for(run, request.GET)
        start, end = _epoch(request.GET, "start"), _epoch(request.GET, "end")
        points = _int(request.GET, "points", DEFAULT_POINTS, 10, MAX_POINTS)
        replay = _replay(run, result)
    except BadQuery as exc:
        return _error(exc)
    bars = replay.bars
    cut = series.window(bars.time, start, end)
    starts, ohlc = series.candles(
        bars.time[cut], bars.open[cut], bars.high[cut], bars.low[cut],
        bars.close[cut], points,
    )  # fmt: skip
    picked = starts + cut.start
    found = indicators(result.strategy, result.params, bars)
    panel = found["panel"]
    trades = replay.trades
    lo, hi = bars.time[cut][[0, -1]] if cut.stop > cut.start else (0, -1)
    shown = np.flatnonzero(
        ((trades["entry_time"] >= lo) & (trades["entry_time"] <= hi))
        | ((trades["exit_time"] >= lo) & (trades["exit_time"] <= hi))
    )[-MAX_MARKERS:]
    sides = series.sides(trades)[shown].tolist()
    reasons = series.exit_reasons(trades)[shown].tolist()
    return JsonResponse(
        {
            "symbol": result.symbol,
            "strategy": result.strategy,
            "params": result.params,
            "bars": cut.stop - cut.start,
            "bars_per_candle": (cut.stop - cut.start) / max(1, len(starts)),
            "time": _ms(bars.time[picked]),
            **{name: series.finite(values) for name, values in ohlc.items()},
            "overlay": {
                name: series.finite(values[picked])
                for name, values in found["overlay"].items()
            },
            "panel": panel
            and {
                "name": panel["name"],
                "levels": panel["levels"],
                "lines": {
                    name: series.finite(values[picked])
                    for name, values in panel["lines"].items()
                },
            },
            "trades": {
                "count": len(trades["return_pct"]),
                "shown": len(shown),
                "n": (shown + 1).tolist(),
                "side": sides,
                "exit_reason": reasons,
                "entry_time": _ms(trades["entry_time"][shown]),
                "entry_price": series.finite(trades["entry_price"][shown]),
                "exit_time": _ms(trades["exit_time"][shown]),
                "exit_price": series.finite(trades["exit_price"][shown]),
                "return_pct": series.finite(trades["return_pct"][shown]),
            },
        }
    )


# ---- the trade list and its CSV ------------------------------------------------------


def _trade_record(trades, i: int, sides: np.ndarray, reasons: np.ndarray) -> dict:
    """Return trade ``i`` (0-based, oldest first) as a JSON-ready dict; ``sides``
    and ``reasons`` are series.sides(trades) and series.exit_reasons(trades)."""
    record = {
        "n": i + 1,
        "entry_time": _iso(trades["entry_time"][i]),
        "exit_time": _iso(trades["exit_time"][i]),
        "side": sides[i],
        "entry_price": float(trades["entry_price"][i]),
        "exit_price": float(trades["exit_price"][i]),
        "units": float(trades["units"][i]),
        "return_pct": float(trades["return_pct"][i]),
        "bars_held": int(trades["bars_held"][i]),
        "fees": float(trades["fees"][i]),
        "exit_reason": reasons[i],
        "closed_at_end": bool(trades["closed_at_end"][i]),
        # Bars were missing while this trade was held (see metrics.trade_gaps).
        "gap": bool(trades["gap"][i]) if "gap" in trades else False,
    }
    return record


def _choice(query, name: str, choices: tuple[str, ...]) -> str:
    value = query.get(name, "")
    if value not in choices:
        raise BadQuery(
            f"{name}: must be one of {', '.join(c or '(empty)' for c in choices)}", name
        )
    return value


def trades_json(request: HttpRequest, run_id: int) -> JsonResponse:
    """Return one page of a result's trades, filtered and sorted on the server.

    Query: symbol, strategy, [params]; ``outcome`` winners|losers, ``side``,
    ``reason``; ``sort`` one of series.TRADE_SORTS, "-" first for descending
    (default: trade order); ``page`` (1-based) and ``per_page`` (≤ 500).
    """
    run = run_or_404(request, run_id)
    query = request.GET
    try:
        result = result_for(run, query)
        outcome = _choice(query, "outcome", ("", "winners", "losers"))
        side = _choice(query, "side", ("", "long", "short"))
        reason = query.get("reason", "")
        sort = query.get("sort") or "n"
        if sort.lstrip("-") not in series.TRADE_SORTS:
            raise BadQuery(
                f"sort: must be one of {', '.join(series.TRADE_SORTS)}", "sort"
            )
        per_page = _int(query, "per_page", TRADES_PER_PAGE, 1, MAX_TRADES_PER_PAGE)
        replay = _replay(run, result)
        trades = replay.trades
        rows, total = series.trade_rows(
            trades, outcome=outcome, side=side, reason=reason, sort=sort
        )
        pages = max(1, -(-len(rows) // per_page))
        page = _int(query, "page", 1, 1, pages)
    except BadQuery as exc:
        return _error(exc)
    chosen = rows[(page - 1) * per_page : page * per_page]
    sides, reasons = series.sides(trades), series.exit_reasons(trades)
    return JsonResponse(
        {
            "total": total,
            "count": len(rows),
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "sort": sort,
            "reasons": sorted(set(reasons.tolist())),
            "sides": sorted(set(sides.tolist())),
            "rows": [_trade_record(trades, int(i), sides, reasons) for i in chosen],
        }
    )


CSV_TRADE_COLUMNS = (
    "n", "entry_time", "exit_time", "side", "entry_price", "exit_price", "units",
    "return_pct", "bars_held", "fees", "exit_reason", "closed_at_end", "gap",
)  # fmt: skip


def trades_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    """Download every trade of one result as CSV (one row per trade)."""
    run = run_or_404(request, run_id)
    try:
        result = result_for(run, request.GET)
        trades = _replay(run, result).trades
    except BadQuery as exc:
        return _error(exc)
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_TRADE_COLUMNS)
    sides, reasons = series.sides(trades), series.exit_reasons(trades)
    for i in range(len(trades["return_pct"])):
        record = _trade_record(trades, i, sides, reasons)
        writer.writerow([record[name] for name in CSV_TRADE_COLUMNS])
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    name = f"run-{run.pk}-{result.symbol}-{result.strategy}-trades.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
