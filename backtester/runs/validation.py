"""Turn a run request (websocket message or CLI flags) into a checked RunSpec.

The strategy parameter schemas in ``strategies.registry`` are the single source of
truth; every problem is reported as :class:`RequestError` naming its field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from backtester.library.selectors import (
    UnknownStrategy,
    source_spec,
    strategy_resolve,
)
from prices.symbols import symbol_problem
from prices.timeframes import INTERVALS as TIMEFRAMES
from strategies.params import brief, parse_decimal
from strategies.registry import STRATEGIES, ParamError, StrategySpec, validate_params
from strategies.risk import DEFAULT_RISK, RISK_PARAMS, Risk, validate_risk
from strategies.rules.errors import RuleError

# Every interval bars can be built at (prices/timeframes.py), 1m to 1d.
INTERVALS = TIMEFRAMES
MAX_FEE = 0.05
MAX_SLIPPAGE_BPS = 500.0
MAX_SYMBOLS = 500
# The risk settings, top-level fields of a run request like fee and slippage.
RISK_FIELDS = tuple(spec.name for spec in RISK_PARAMS)
# Strategy entries in one run (each one runs on every coin).
MAX_JOBS = 50
# Dates a run may ask for: crypto prices start after 1970, and a far-future end
# is a typo (and past year 9999 no datetime can hold it).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
RUN_FIELDS = {
    *RISK_FIELDS,
    "type",
    "no_cache",
    "strategy",
    "strategies",
    "version",
    "params",
    "symbols",
    "start",
    "end",
    "interval",
    "fee",
    "slippage_bps",
}


class RequestError(ValueError):
    """A bad request; ``field`` names the offending input when there is one."""

    def __init__(
        self,
        message: str,
        field: str | None = None,
        errors: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = list(errors) or ([(field, message)] if field else [])


@dataclass(frozen=True)
class RunSpec:
    """A validated run: (strategy, params) jobs over coins and a date range."""

    jobs: tuple[tuple[str, dict], ...]
    symbols: tuple[str, ...] | None = None  # None: every active coin
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    interval: str = "1h"
    fee: float = 0.001
    slippage_bps: float = 0.0
    risk: Risk = DEFAULT_RISK
    extra: dict = field(default_factory=dict)
    # Compute afresh even when an identical run's results are stored.
    no_cache: bool = False
    # {key: StrategyVersion id} of the saved strategies among the jobs.
    versions: dict = field(default_factory=dict)
    # {key: rule source} of strategies run from text without being saved
    # (``backtest --strategy-file``); such runs are not stored.
    sources: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "strategies": [{"strategy": k, "params": p} for k, p in self.jobs],
            "symbols": list(self.symbols) if self.symbols is not None else None,
            "start": iso(self.start),
            "end": iso(self.end),
            "interval": self.interval,
            "fee": self.fee,
            "slippage_bps": self.slippage_bps,
            "risk": self.risk.as_dict(),
        }


def iso(value: datetime | None) -> str | None:
    """Return an aware datetime as ISO-8601 UTC with a trailing Z."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_when(value: object, name: str) -> datetime | None:
    """Parse an ISO date or datetime (naive means UTC); None or "" stays None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RequestError(f"{name}: expected an ISO-8601 date string", name)
    text = value.strip()
    if not text.isascii():
        text = ""  # fromisoformat takes other scripts' digits; a date does not
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(0))
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(
            f"{name}: {brief(value)} is not a date (use YYYY-MM-DD or ISO-8601)", name
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # 0001-01-01T00:00+01:00 is a valid string whose UTC time is year 0.
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        parsed = None
    if parsed is None or not EARLIEST <= parsed <= LATEST:
        raise RequestError(
            f"{name}: must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", name
        )
    return parsed


def _number(value: object, name: str, low: float, high: float) -> float:
    """Return a JSON number or a plain ASCII decimal string within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(f"{name}: expected a number", name)
    if isinstance(value, str):
        parsed = parse_decimal(value)
        if parsed is None:
            raise RequestError(f"{name}: {brief(value)} is not a number", name)
        value = parsed
    # Compared before any float(): a 401-digit integer overflows a float, and
    # NaN compares false both ways.
    if not low <= value <= high:
        raise RequestError(f"{name}: must be between {low:g} and {high:g}", name)
    return float(value)


@dataclass
class _Saved:
    """Who asks, to look up saved strategies; collects the versions found."""

    user: object = None
    trusted: bool = False
    versions: dict = field(default_factory=dict)
    specs: dict = field(default_factory=dict)
    sources: Mapping = field(default_factory=dict)

    def spec(self, key: str, version: object, name: str) -> StrategySpec:
        """Return the saved strategy ``key[@version]`` or raise RequestError."""
        if key in self.sources:
            try:
                self.specs[key] = source_spec(self.sources[key], key=key)
            except RuleError as exc:
                raise RequestError(f"{name}: {exc}", name) from None
            return self.specs[key]
        try:
            spec, version_id = strategy_resolve(
                key, version=version, user=self.user, trusted=self.trusted
            )
        except UnknownStrategy as exc:
            choices = ", ".join(STRATEGIES)
            raise RequestError(
                f"{name}: {exc.message}; choose one of {choices} or a saved strategy",
                name,
            ) from None
        if self.versions.setdefault(key, version_id) != version_id:
            raise RequestError(f"{name}: one version of {key!r} per run", name)
        self.specs[key] = spec
        return spec


def _jobs(data: Mapping, saved: _Saved) -> tuple[tuple[str, dict], ...]:
    if "strategies" in data and "strategy" in data:
        raise RequestError("give either strategy or strategies, not both", "strategy")
    # Problems with the strategy list are reported under the field the client used.
    name = "strategies" if "strategies" in data else "strategy"
    if name not in data:
        raise RequestError("strategy: required", "strategy")
    raw = data[name]
    if raw == "all":
        items: list = list(STRATEGIES)
    elif name == "strategy" and isinstance(raw, str):
        items = [raw]
    elif name == "strategies" and isinstance(raw, list) and raw:
        items = raw
        if len(items) > MAX_JOBS:
            raise RequestError(
                f"strategies: at most {MAX_JOBS} entries in one run", "strategies"
            )
    elif name == "strategy":
        raise RequestError('strategy: expected a strategy key (or "all")', "strategy")
    else:
        raise RequestError(
            "strategies: expected a non-empty list of strategy keys", "strategies"
        )
    shared = _shared_params(data.get("params"), raw, items)
    version = data.get("version")
    if version is not None and not (len(items) == 1 and isinstance(items[0], str)):
        raise RequestError(
            "version: only for a single saved strategy given by key", "version"
        )
    jobs = [_job(item, shared, name, saved, version) for item in items]
    if len({(k, tuple(sorted(p.items()))) for k, p in jobs}) != len(jobs):
        raise RequestError(
            "strategies: the same strategy is listed twice", "strategies"
        )
    return tuple(jobs)


def _shared_params(params: object, raw: object, items: list) -> Mapping:
    """Return the top-level ``params``, which apply to one strategy named by key."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise RequestError("params: expected an object", "params")
    if params and raw == "all":
        raise RequestError(
            'params: not allowed with "all" (every strategy runs with its defaults)',
            "params",
        )
    if params and not (len(items) == 1 and isinstance(items[0], str)):
        raise RequestError(
            "params: only for a single strategy given by key; in a list give each "
            'item its own, as {"strategy": key, "params": {...}}',
            "params",
        )
    return params


def _job(
    item: object, shared: Mapping, name: str, saved: _Saved, version: object = None
) -> tuple[str, dict]:
    """Return one validated (key, params) job; ``name`` is the field to blame."""
    if isinstance(item, str):
        key, params = item, shared
    elif isinstance(item, Mapping) and isinstance(item.get("strategy"), str):
        key, params = item["strategy"], item.get("params")
        version = item.get("version")
        unknown = sorted(set(item) - {"strategy", "params", "version"}, key=str)
        if unknown:
            raise RequestError(
                f"{name}: unknown field {brief(unknown[0])} in the item for "
                f"{brief(key)}",
                name,
            )
        if params is None:
            params = {}
        elif not isinstance(params, Mapping):
            raise RequestError(
                f"{name}: params of {brief(key)} must be an object", name
            )
    else:
        raise RequestError(
            f"{name}: each item must be a key or {{strategy, params}}", name
        )
    if key in saved.sources:
        spec: str | StrategySpec = saved.spec(key, None, name)
    elif key in STRATEGIES and version is None:
        spec = key
    elif key in STRATEGIES:
        raise RequestError("version: only saved strategies have versions", "version")
    else:
        # Not a built-in: a saved strategy the user may see (library app).
        spec = saved.spec(key, version, name)
    try:
        return key, validate_params(spec, params)
    except ParamError as exc:
        errors = [(f"params.{field}", message) for field, message in exc.errors]
        raise RequestError(str(exc), errors[0][0], errors) from None


# A number as text: plain ASCII decimals only. float() alone would also read
# "1_0", digits of other scripts and "nan".
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_NUMERIC_RISK = {spec.name for spec in RISK_PARAMS if spec.type is not str}


def _risk(data: Mapping) -> Risk:
    """Return the request's risk settings (absent or null: the default)."""
    given = {name: data[name] for name in RISK_FIELDS if name in data}
    errors = []
    for name, value in given.items():
        if name not in _NUMERIC_RISK:
            continue
        text = value.strip() if isinstance(value, str) else None
        if text and not _DECIMAL.fullmatch(text):
            errors.append((name, f"expected a number, got {brief(value)}"))
        elif type(value) is int and abs(value) > 10**300:
            # An integer too large for a float would raise OverflowError.
            errors.append((name, "must be a finite number"))
    if errors:
        message = "; ".join(f"{name}: {problem}" for name, problem in errors)
        raise RequestError(message, errors[0][0], errors)
    try:
        return validate_risk(given)
    except ParamError as exc:
        raise RequestError(str(exc), exc.errors[0][0], exc.errors) from None


def _symbols(value: object) -> tuple[str, ...] | None:
    # Omitted (or "all") means every active coin; an empty string or list is a
    # choice of nothing, an error like any other empty choice.
    if value is None or value == "all":
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise RequestError("symbols: expected a list of coin symbols", "symbols")
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in value if s.strip()))
    if not symbols:
        # An empty choice is a mistake, not "everything": omit the field for that.
        raise RequestError(
            "symbols: no coin given (omit symbols to use every active coin)", "symbols"
        )
    if len(symbols) > MAX_SYMBOLS:
        raise RequestError(f"symbols: at most {MAX_SYMBOLS} coins", "symbols")
    problems = [p for p in map(symbol_problem, symbols) if p]
    if problems:
        raise RequestError(f"symbols: {problems[0]}", "symbols")
    return symbols


def _check_directions(saved: _Saved, risk: Risk) -> None:
    """Raise RequestError when a saved strategy lacks a side the run trades."""
    for key, spec in saved.specs.items():
        directions = getattr(spec.signal.__self__, "directions", ())
        if risk.direction not in directions:
            raise RequestError(
                f"direction: {key!r} cannot run {risk.direction}; it can run "
                f"{' or '.join(directions)}",
                "direction",
            )


def run_spec(
    data: Mapping,
    *,
    allow_unknown: bool = False,
    user: object = None,
    trusted: bool = False,
    sources: Mapping[str, str] | None = None,
) -> RunSpec:
    """Return the RunSpec for a request mapping or raise RequestError.

    Saved strategies are those ``user`` may see (``trusted``: the command
    line, every one); the versions used are in the spec's ``versions``.
    ``sources`` are unsaved rule texts by key, run as they are.
    """
    if not isinstance(data, Mapping):
        raise RequestError("expected a JSON object")
    if not allow_unknown:
        unknown = sorted(set(data) - RUN_FIELDS, key=str)
        if unknown:
            name = brief(unknown[0]).strip("'")
            raise RequestError(f"{name}: unknown field", name)
    saved = _Saved(user=user, trusted=trusted, sources=dict(sources or {}))
    jobs = _jobs(data, saved)
    interval = data.get("interval")
    if interval is None or interval == "":
        interval = "1h"
    elif not isinstance(interval, str) or interval not in INTERVALS:
        raise RequestError(
            f"interval: must be one of {', '.join(INTERVALS)}", "interval"
        )
    start = parse_when(data.get("start"), "start")
    end = parse_when(data.get("end"), "end")
    if start is not None and end is not None and start >= end:
        raise RequestError("end: must be after start", "end")
    fee = data.get("fee")
    slippage = data.get("slippage_bps")
    no_cache = data.get("no_cache", False)
    if not isinstance(no_cache, bool):
        raise RequestError("no_cache: expected true or false", "no_cache")
    spec = RunSpec(
        jobs=jobs,
        symbols=_symbols(data.get("symbols")),
        start=start,
        end=end,
        interval=interval,
        fee=0.001 if fee is None else _number(fee, "fee", 0.0, MAX_FEE),
        slippage_bps=0.0
        if slippage is None
        else _number(slippage, "slippage_bps", 0.0, MAX_SLIPPAGE_BPS),
        risk=_risk(data),
        no_cache=no_cache,
        versions=saved.versions,
        sources=dict(saved.sources),
    )
    _check_directions(saved, spec.risk)
    return spec
