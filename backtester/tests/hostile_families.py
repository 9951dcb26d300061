"""Malformed websocket messages and query strings, by family.

The hostile tests (``backtester/runs/tests/test_hostile.py``,
``backtester/sweeps/tests/test_hostile.py``, ``test_query_strings.py``) and the
campaign against a real stack (``bench/hostile.py``) send these same families.
Plain data: importing this module needs no Django set-up.
"""

from __future__ import annotations

import json

VALID = {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
HUGE = 10**400  # 401 digits: float() of it raises OverflowError


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# Values that no field of a run request accepts.
BAD_VALUES = [
    HUGE, -HUGE, 1e308, -1e308, -1, 10**20, 3.5e12,
    "1_0", "\u0661\u0660", "\uff11\uff10", "\u0967", "1e999", "-1e999",
    "NaN", "nan", "Infinity", "-inf", "0x10", "1,5", " 1 0 ",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "2024-13-45",
    "x" * 5000, "\u0000", "<script>alert(1)</script>", "=CMD()", "\U0001f600",
    True, False, [], [None], [[]], {"a": 1}, nested(30), nested(31, {"a": 1}),
]  # fmt: skip
# Every field a run request has, and the field an error must name.
FIELDS = {
    "type": "type",
    "strategy": "strategy",
    "strategies": "strategies",
    "params": "params",
    "symbols": "symbols",
    "start": "start",
    "end": "end",
    "interval": "interval",
    "fee": "fee",
    "slippage_bps": "slippage_bps",
    "stop_loss_pct": "stop_loss_pct",
    "take_profit_pct": "take_profit_pct",
    "trailing_stop_pct": "trailing_stop_pct",
    "direction": "direction",
    "position_size": "position_size",
}
# A parameter of the strategy, and an item of a strategies list.
NESTED = {
    "params.fast": lambda v: {**VALID, "params": {"fast": v}},
    "strategies[0].params.slow": lambda v: {
        **{k: v2 for k, v2 in VALID.items() if k != "strategy"},
        "strategies": [{"strategy": "sma_crossover", "params": {"slow": v}}],
    },
}
NESTED_FIELD = {
    "params.fast": "params.fast",
    "strategies[0].params.slow": "params.slow",
}
# Texts that are not a run request at all, and the error's field (or None).
RAW = [
    ("[" * 1000 + "]" * 1000, None),
    ('{"a":' * 1000 + "1" + "}" * 1000, None),
    ('{"type": "run", "params": ' + '{"a": ' * 1000 + "1" + "}" * 1001, None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": NaN}', None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": Infinity}', None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": -Infinity}', None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": ' + "9" * 401 + "}",
     "fee"),
    ('{"type": "run", "strategy": "sma_crossover", "fee": ' + "9" * 5000 + "}",
     None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": 1e400}', "fee"),
    ('{"type": "run"', None),
    (" ", None),
    ("null", None),
    ("42", None),
    ('"run"', None),
    ("{'type': 'run'}", None),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": ""}', "symbols"),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": []}', "symbols"),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": ",,"}', "symbols"),
    ('{"type": "cancel"}', None),
    ('{"type": "resend", "run_id": 1, "seqs": [1]}', "run_id"),
    ('{"type": "resend", "run_id": true, "seqs": [1]}', "run_id"),
]  # fmt: skip
# Over the 64 KB limit in UTF-8 bytes though not in characters: 40,000
# two-byte characters are 80,000 bytes.
OVERSIZE = [
    json.dumps({"type": "run", "pad": "\u00e9" * 40_000}, ensure_ascii=False),
    json.dumps({"type": "run", "pad": "\U0001f600" * 17_000}, ensure_ascii=False),
    json.dumps({"type": "run", "pad": "x" * 70_000}),
]


def run_messages() -> list[tuple[str, str | None, str]]:
    """Return (text, the field the error must name or None, label)."""
    out = []
    for name, field in FIELDS.items():
        for i, value in enumerate(BAD_VALUES):
            if name == "params" and value == {"a": 1}:
                value = {"a": 1, "fast": 5}  # an object, but with an unknown name
                field = "params.a"
            # "strategies" replaces "strategy" (giving both is its own error).
            base = {
                k: v
                for k, v in VALID.items()
                if (k, name) != ("strategy", "strategies")
            }
            out.append((json.dumps({**base, name: value}), field, f"{name}[{i}]"))
            field = FIELDS[name]
    for name, build in NESTED.items():
        for i, value in enumerate(BAD_VALUES):
            field = NESTED_FIELD[name]
            if value is BAD_VALUES[-1] or value is BAD_VALUES[-2]:
                # Too deep: named by its path through objects, to the list.
                field = name.split("[")[0] if "[" in name else name
            out.append((json.dumps(build(value)), field, f"{name}[{i}]"))
    for i, (text, field) in enumerate(RAW):
        out.append((text, field, f"raw[{i}]"))
    return out


LONG = "x" * 5000
SWEEP = {
    "type": "sweep",
    "strategy": "sma_crossover",
    "symbols": ["AAA"],
    "grid": {"fast": [5, 10], "slow": [30]},
}
WALK = {**SWEEP, "type": "walk_forward", "train_bars": 100, "test_bars": 50}
PORTFOLIO_SWEEP = {**SWEEP, "type": "portfolio_sweep", "params": {"slow": 30},
                   "grid": {"max_positions": [1, 2], "fast": [5, 10]}}  # fmt: skip
# Values that no number, size or name accepts.
NUMBERS = [HUGE, -HUGE, "1e999999999", "-1e999999999", "1_0", "\uff11\uff10",
           LONG, {"a": 1}, [1], True]  # fmt: skip
# Grid axes that no parameter takes: steps decimal division cannot do, bounds
# past a decimal context, Python-only digits.
AXES = [
    {"start": 5, "stop": 50, "step": "1e-30"},
    {"start": 5, "stop": 50, "step": 1e-300},
    {"start": 5, "stop": 50, "step": 5e-324},
    "5:50:1e-30",
    {"start": 5, "stop": "1e999999999", "step": 1},
    {"start": "-1e999999999", "stop": "1e999999999", "step": 1},
    "5:1e999999999:1",
    {"start": 5, "stop": HUGE, "step": 1},
    {"start": "1_0", "stop": 20, "step": 5},
    "\uff11\uff10",
    "1_0,20",
    [HUGE],
    [LONG],
    LONG,
]
IDS = [HUGE, -HUGE, 10**30, -1, 0, "1", {"a": 1}, [1], True, 1.5, LONG]


def job_messages() -> list[tuple[dict, str | None, str]]:
    """Return (message, the field its error must name or None, label)."""
    out = []
    families = (("sweep", SWEEP), ("walk_forward", WALK))
    for kind, base in (*families, ("portfolio_sweep", PORTFOLIO_SWEEP)):
        for i, axis in enumerate(AXES):
            grid = {"fast": axis, "slow": [30]}
            out.append(({**base, "grid": grid}, "grid.fast", f"{kind}.grid[{i}]"))
            risk = {"fast": [5, 10], "stop_loss_pct": axis}
            out.append(
                ({**base, "grid": risk}, "grid.stop_loss_pct", f"{kind}.risk[{i}]")
            )
        for i, value in enumerate(NUMBERS):
            for name in ("stop_loss_pct", "fee"):
                out.append(({**base, name: value}, name, f"{kind}.{name}[{i}]"))
            out.append(
                (
                    {**base, "params": {"stop_loss_pct": value}},
                    "params.stop_loss_pct",
                    f"{kind}.params[{i}]",
                )
            )
        for i, value in enumerate([{"a": 1}, False, {}, [], 0, "", LONG, HUGE]):
            out.append(({**base, "objective": value}, "objective", f"{kind}.obj[{i}]"))
        out.append(({**base, LONG: 1}, None, f"{kind}.unknown"))
        out.append(({**base, "strategy": LONG}, "strategy", f"{kind}.strategy"))
    for i, value in enumerate(NUMBERS + [0, -5, 2.5]):
        for name in ("train_bars", "test_bars", "folds"):
            out.append(({**WALK, name: value}, name, f"walk.{name}[{i}]"))
    for i, axis in enumerate([*AXES, [0, 1], [101], [1.5], [True], [1, 1]]):
        grid = {"max_positions": axis, "fast": [5]}
        out.append(
            ({**PORTFOLIO_SWEEP, "grid": grid}, "grid.max_positions",
             f"portfolio_sweep.max_positions[{i}]")
        )  # fmt: skip
    for i, value in enumerate(IDS):
        for name in ("run_id", "sweep_id", "portfolio_id", "portfolio_sweep_id"):
            message = {"type": "attach", name: value}
            out.append((message, name, f"attach.{name}[{i}]"))
        out.append(({"type": "resend", "run_id": value, "seqs": [1]}, "run_id",
                    f"resend.run_id[{i}]"))  # fmt: skip
        out.append(({"type": "cancel", "run_id": value}, None, f"cancel[{i}]"))
    for i, value in enumerate(NUMBERS):
        out.append(
            ({"type": "run", "strategy": "sma_crossover", "stop_loss_pct": value},
             "stop_loss_pct", f"run.stop_loss_pct[{i}]")
        )  # fmt: skip
    return out


# Query strings no page or data endpoint accepts: a deeply nested ``params``,
# a NUL character in a name, and values far past any field's length (below
# daphne's 16 KB request line, which it refuses without an answer).
DEEP = "[" * 3000
QUERY_STRINGS = [
    ("params.deep", {"symbol": "AAA", "strategy": "sma_crossover", "params": DEEP}),
    ("symbol.nul", {"symbol": "A\x00B", "strategy": "sma_crossover"}),
    ("strategy.nul", {"symbol": "AAA", "strategy": "sma\x00crossover"}),
    ("symbol.long", {"symbol": "A" * 5000}),
    ("strategy.long", {"strategy": "x" * 5000}),
    ("params.long", {"params": '{"fast": "' + "9" * 5000 + '"}'}),
    ("params.huge", {"params": '{"fast": ' + "9" * 401 + "}"}),
    ("page.huge", {"page": "9" * 400}),
    ("page.nul", {"page": "1\x00"}),
    ("run.nul", {"run": "1\x00"}),
    ("run.huge", {"run": "9" * 400}),
    ("run.deep", {"run": DEEP}),
]


PORTFOLIO = {
    "type": "portfolio",
    "strategy": "sma_crossover",
    "symbols": ["AAA", "BBB"],
    "params": {"fast": 5, "slow": 20},
    "max_positions": 2,
    "rank": "roc_24",
}
# Every field of a portfolio run besides its type.
PORTFOLIO_FIELDS = (
    "strategy", "symbols", "params", "max_positions", "rank", "start", "end",
    "interval", "fee", "stop_loss_pct", "position_size", "direction",
)  # fmt: skip


def portfolio_messages() -> list[tuple[dict, str | None, str]]:
    """Return (message, the field at fault, label) for the ``portfolio`` type."""
    out = []
    for name in PORTFOLIO_FIELDS:
        for i, value in enumerate([*NUMBERS, [], -5]):
            # An object of params is read: its unknown name is the one at fault.
            field = "params.a" if (name, value) == ("params", {"a": 1}) else name
            out.append(({**PORTFOLIO, name: value}, field, f"portfolio.{name}[{i}]"))
    # An empty string is an absent optional field (what an empty form input
    # sends), so it is hostile only where a value is required.
    for name in ("strategy", "symbols"):
        out.append(({**PORTFOLIO, name: ""}, name, f"portfolio.{name}.empty"))
    for i, value in enumerate(NUMBERS):
        params = {**PORTFOLIO, "params": {"fast": value, "slow": 20}}
        out.append((params, "params.fast", f"portfolio.params.fast[{i}]"))
    # An unknown field's name is echoed cut to 40 characters, so none is given.
    out.append(({**PORTFOLIO, LONG: 1}, None, "portfolio.unknown"))
    return out
