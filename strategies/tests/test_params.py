"""The strategy registry, parameter validation and the package's dependencies."""

from __future__ import annotations

import ast
import contextlib
import gc
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from strategies.params import ParamError, ParamSpec
from strategies.registry import STRATEGIES, get_strategy, schema, validate_params

PARAM_NAMES = {
    "sma_crossover": ["fast", "slow"],
    "ema_crossover": ["fast", "slow"],
    "rsi_reversion": ["period", "lower", "upper"],
    "bollinger_reversion": ["period", "std"],
    "macd_crossover": ["fast", "slow", "signal"],
    "donchian_breakout": ["entry", "exit"],
}


def errors(key, params) -> list[tuple[str, str]]:
    with pytest.raises(ParamError) as caught:
        validate_params(key, params)
    return caught.value.errors


def test_the_six_strategies_in_order_with_their_parameters():
    assert list(STRATEGIES) == list(PARAM_NAMES)
    for key, names in PARAM_NAMES.items():
        spec = get_strategy(key)
        assert spec.key == key and spec.name and spec.description
        assert [p.name for p in spec.params] == names
        assert callable(spec.signal)
    assert get_strategy("bollinger_reversion").params[1].type is float


def test_defaults_are_valid_and_filled_in():
    assert validate_params("sma_crossover", {}) == {"fast": 20, "slow": 50}
    assert validate_params("ema_crossover", None) == {"fast": 12, "slow": 26}
    assert validate_params("rsi_reversion", {}) == {
        "period": 14, "lower": 30.0, "upper": 70.0,
    }  # fmt: skip
    assert validate_params("bollinger_reversion", {}) == {"period": 20, "std": 2.0}
    assert validate_params("macd_crossover", {}) == {
        "fast": 12, "slow": 26, "signal": 9,
    }  # fmt: skip
    assert validate_params("donchian_breakout", {}) == {"entry": 20, "exit": 10}


def test_values_are_coerced():
    got = validate_params(
        "rsi_reversion", {"period": "10", "lower": 25, "upper": "80.5"}
    )
    assert got == {"period": 10, "lower": 25.0, "upper": 80.5}
    assert type(got["period"]) is int and type(got["lower"]) is float
    assert validate_params("sma_crossover", {"fast": 5.0, "slow": " 9 "}) == {
        "fast": 5, "slow": 9,
    }  # fmt: skip
    assert validate_params("sma_crossover", {"fast": "5.0"})["fast"] == 5
    numpy_values = validate_params(
        "bollinger_reversion", {"period": np.int64(30), "std": np.float32(1.5)}
    )
    assert numpy_values == {"period": 30, "std": 1.5}
    assert type(numpy_values["period"]) is int and type(numpy_values["std"]) is float


def test_every_problem_is_listed_at_once():
    found = errors("sma_crossover", {"fast": "x", "slow": 1, "speed": 3})
    assert [name for name, _ in found] == ["speed", "fast", "slow"]
    with pytest.raises(ParamError) as caught:
        validate_params("sma_crossover", {"fast": "x", "slow": 1, "speed": 3})
    text = str(caught.value)
    assert "\n" not in text
    for name in ("speed", "fast", "slow"):
        assert f"{name}:" in text
    # A cross-parameter rule is judged beside an unknown name.
    found = errors("macd_crossover", {"fast": 30, "slow": 20, "sgnal": 9})
    assert [name for name, _ in found] == ["sgnal", "fast"]


@pytest.mark.parametrize(
    ("key", "params", "field", "words"),
    [
        ("sma_crossover", {"fast": 40, "slow": 30}, "fast", "less than slow"),
        ("ema_crossover", {"fast": 26}, "fast", "less than slow"),
        ("rsi_reversion", {"lower": 70, "upper": 30}, "lower", "less than upper"),
        ("rsi_reversion", {"period": True}, "period", "boolean"),
        ("rsi_reversion", {"period": np.True_}, "period", "boolean"),
        ("rsi_reversion", {"period": 14.5}, "period", "integer"),
        ("rsi_reversion", {"period": "14.5"}, "period", "integer"),
        ("rsi_reversion", {"upper": 100}, "upper", "between"),
        ("bollinger_reversion", {"std": "wide"}, "std", "expected float"),
        ("bollinger_reversion", {"std": float("nan")}, "std", "finite"),
        ("bollinger_reversion", {"std": float("inf")}, "std", "finite"),
        # Text is plain ASCII decimal or nothing: not "inf", "1_0" or other
        # scripts' digits (all of which Python's float() and int() accept).
        ("bollinger_reversion", {"std": "inf"}, "std", "expected float"),
        ("sma_crossover", {"fast": "1_0"}, "fast", "expected int"),
        ("sma_crossover", {"fast": "\u0661\u0660"}, "fast", "expected int"),
        ("sma_crossover", {"fast": "\uff11\uff10"}, "fast", "expected int"),
        # Huge values are out of range, not an OverflowError.
        ("sma_crossover", {"fast": 10**400}, "fast", "between"),
        ("bollinger_reversion", {"std": 10**400}, "std", "between"),
        ("rsi_reversion", {"lower": -(10**400)}, "lower", "between"),
        ("bollinger_reversion", {"period": None}, "period", "expected int"),
        ("bollinger_reversion", {"period": [20]}, "period", "expected int"),
        ("donchian_breakout", {"entry": 0}, "entry", "between"),
        ("donchian_breakout", {"exit": 10_000}, "exit", "between"),
        ("macd_crossover", {"signal": -1}, "signal", "between"),
        ("macd_crossover", {"signal": 1}, "signal", "between 2 and"),
        # A close is at most sqrt(n - 1) population deviations below its mean:
        # sqrt(1) = 1 for a 2-bar window, sqrt(19) = 4.359 for 20 bars.
        ("bollinger_reversion", {"period": 2, "std": 1.0}, "std", "less than sqrt"),
        ("bollinger_reversion", {"period": 20, "std": 4.36}, "std", "= 4.359"),
    ],
)
def test_invalid_values(key, params, field, words):
    ((name, message),) = errors(key, params)
    assert name == field and words in message


def test_unknown_strategy_names_the_choices():
    for key in ("nope", None, 3):
        with pytest.raises(ParamError) as caught:
            get_strategy(key)
        ((field, message),) = caught.value.errors
        assert field == "strategy" and "unknown strategy" in message
        assert "sma_crossover" in message and "donchian_breakout" in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ParamError, match="strategy"):
        validate_params("nope", {})


def test_params_must_be_a_mapping():
    ((field, _),) = errors("sma_crossover", [("fast", 3)])
    assert field == "params"


def test_schema_is_json_and_matches_the_registry():
    data = json.loads(json.dumps(schema()))
    assert [s["key"] for s in data] == list(STRATEGIES)
    for strategy in data:
        assert set(strategy) == {"key", "name", "description", "params", "checks"}
        for param in strategy["params"]:
            assert set(param) == {"name", "type", "default", "min", "max", "help"}
            assert param["type"] in ("int", "float")
            assert param["min"] <= param["default"] <= param["max"]
            assert param["help"]


def test_schema_publishes_the_cross_parameter_checks():
    published = {s["key"]: s["checks"] for s in schema()}
    fast_slow = [{"rule": "less_than", "low": "fast", "high": "slow"}]
    assert published == {
        "sma_crossover": fast_slow,
        "ema_crossover": fast_slow,
        "rsi_reversion": [{"rule": "less_than", "low": "lower", "high": "upper"}],
        "bollinger_reversion": [
            {"rule": "below_sqrt_window", "period": "period", "std": "std"}
        ],
        "macd_crossover": fast_slow,
        "donchian_breakout": [],
    }
    # What is published is what the server applies: equal values fail on the
    # low field, and a check exists for every rule published.
    for key, checks in published.items():
        spec = get_strategy(key)
        assert len(checks) == len(spec.checks)
        limits = {p.name: p for p in spec.params}
        for check in checks:
            if check["rule"] == "below_sqrt_window":
                validate_params(key, {"period": 17, "std": 3.99})  # sqrt(16) = 4
                fields = [f for f, _ in errors(key, {"period": 17, "std": 4.0})]
                assert fields == ["std"]
                continue
            low, high = limits[check["low"]], limits[check["high"]]
            same = max(low.min, high.min)
            fields = [f for f, _ in errors(key, {low.name: same, high.name: same})]
            assert fields == [low.name], (key, check)


def test_param_spec_coerce():
    spec = ParamSpec("n", int, 5, 1, 10, "a window")
    assert spec.coerce("7") == (7, None)
    assert spec.coerce(11)[1] == "must be between 1 and 10, got 11"


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """Hold the garbage collector off in the block (after one collection).

    CPython 3.11 raises ``SystemError: AST constructor recursion depth
    mismatch`` when a collection inside ``ast.parse`` runs a finalizer that
    calls Python code (an earlier test's pending asyncio task, destroyed).
    Nested blocks collect once: late in a full pass one collection takes a
    third of a second, and a walk over the source parses some 200 files.
    """
    if not gc.isenabled():
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_quietly(path: Path) -> ast.AST:
    """Parse a file with the garbage collector held off (``collector_held``)."""
    with collector_held():
        return ast.parse(path.read_text(), str(path))


def test_strategies_package_never_imports_django():
    root = Path(__file__).resolve().parents[1]
    files = sorted(root.rglob("*.py"))
    assert root / "engine.py" in files and Path(__file__) in files
    with collector_held():
        trees = {path: parse_quietly(path) for path in files}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "__import__",
                "import_module",
            ):
                names = [getattr(arg, "value", "") for arg in node.args[:1]]
            else:
                continue
            assert not any(str(name).split(".")[0] == "django" for name in names), (
                f"{path} imports django"
            )
