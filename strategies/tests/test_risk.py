"""The risk settings: schema, validation and the Risk value."""

from __future__ import annotations

import json

import pytest

from strategies.engine import run_backtest, run_many
from strategies.params import ParamError
from strategies.risk import DEFAULT_RISK, RISK_PARAMS, Risk, risk_schema, validate_risk
from strategies.tests.test_engine import make_bars

NAMES = [
    "stop_loss_pct", "take_profit_pct", "trailing_stop_pct", "direction",
    "position_size",
]  # fmt: skip


def errors(values) -> list[tuple[str, str]]:
    with pytest.raises(ParamError) as caught:
        validate_risk(values)
    return caught.value.errors


def test_defaults_are_off_long_and_all_in():
    assert [spec.name for spec in RISK_PARAMS] == NAMES
    for empty in (None, {}, {name: None for name in NAMES}):
        risk = validate_risk(empty)
        assert risk == Risk() == DEFAULT_RISK and risk.is_default
    assert DEFAULT_RISK.as_dict() == {
        "stop_loss_pct": None, "take_profit_pct": None, "trailing_stop_pct": None,
        "direction": "long", "position_size": 1.0,
    }  # fmt: skip
    assert (DEFAULT_RISK.stop_loss, DEFAULT_RISK.trailing_stop) == (None, None)


def test_values_are_coerced_and_kept_as_given():
    risk = validate_risk(
        {"stop_loss_pct": "5", "take_profit_pct": 12.5, "trailing_stop_pct": 3,
         "direction": " Both ", "position_size": "0.25"}
    )  # fmt: skip
    assert risk == Risk(5.0, 12.5, 3.0, "both", 0.25)
    assert not risk.is_default
    assert risk.stop_loss == 0.05 and risk.take_profit == 0.125
    assert risk.trailing_stop == 0.03
    assert type(risk.trailing_stop_pct) is float
    json.dumps(risk.as_dict(), allow_nan=False)
    assert validate_risk(risk.as_dict()) == risk
    # An empty form field is "not set".
    assert validate_risk({"stop_loss_pct": "", "direction": ""}) == DEFAULT_RISK
    # Limits that are allowed: a 1000% target, a full position.
    assert (
        validate_risk({"take_profit_pct": 1000, "position_size": 1}).position_size == 1
    )


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("stop_loss_pct", 0, "must satisfy 0 < value < 100, got 0"),
        ("stop_loss_pct", 100, "must satisfy 0 < value < 100, got 100"),
        ("stop_loss_pct", -5, "must satisfy 0 < value < 100"),
        ("take_profit_pct", 0.0, "must satisfy 0 < value <= 1000"),
        ("take_profit_pct", 1000.5, "must satisfy 0 < value <= 1000"),
        ("trailing_stop_pct", 100, "must satisfy 0 < value < 100"),
        ("position_size", 0, "must satisfy 0 < value <= 1"),
        ("position_size", 1.5, "must satisfy 0 < value <= 1"),
        ("position_size", True, "expected a number, got a boolean"),
        ("stop_loss_pct", "five", "expected a number, got 'five'"),
        ("stop_loss_pct", float("nan"), "must be a finite number"),
        ("take_profit_pct", float("inf"), "must be a finite number"),
        ("trailing_stop_pct", [3], "expected a number, got list"),
        ("direction", "sideways", "must be one of long, short, both"),
        ("direction", 1, "must be one of long, short, both"),
    ],
)
def test_a_bad_value_names_its_field(name, value, message):
    ((field, problem),) = errors({name: value})
    assert field == name and message in problem


def test_every_problem_is_reported_unknown_keys_included():
    got = errors(
        {"stop_loss_pct": 0, "direction": "up", "leverage": 3, "position_size": 2}
    )
    assert [field for field, _ in got] == [
        "leverage", "stop_loss_pct", "direction", "position_size",
    ]  # fmt: skip
    assert "unknown risk setting" in got[0][1]
    assert errors(["stop_loss_pct"]) == [
        ("risk", "expected a mapping of risk settings")
    ]


def test_risk_checks_its_fields_when_built_directly():
    with pytest.raises(ParamError, match="stop_loss_pct"):
        Risk(stop_loss_pct=0)
    with pytest.raises(ParamError, match="direction"):
        Risk(direction="Long")
    with pytest.raises(ParamError, match="position_size: must not be None"):
        Risk(position_size=None)
    with pytest.raises(ParamError, match="take_profit_pct: expected a number"):
        Risk(take_profit_pct="10")
    assert Risk(stop_loss_pct=5).stop_loss_pct == 5.0


def test_schema_is_json_and_carries_units_limits_and_choices():
    schema = risk_schema()
    json.dumps(schema, allow_nan=False)
    by_name = {entry["name"]: entry for entry in schema}
    assert list(by_name) == NAMES
    stop = by_name["stop_loss_pct"]
    assert (stop["type"], stop["default"], stop["unit"]) == ("float", None, "%")
    assert (stop["min"], stop["max"]) == (0.0, 100.0)
    assert stop["min_exclusive"] and stop["max_exclusive"]
    assert not by_name["take_profit_pct"]["max_exclusive"]
    assert by_name["take_profit_pct"]["max"] == 1000.0
    direction = by_name["direction"]
    assert direction["type"] == "choice" and direction["default"] == "long"
    assert direction["choices"] == ["long", "short", "both"]
    size = by_name["position_size"]
    assert (size["default"], size["min"], size["max"]) == (1.0, 0.0, 1.0)
    assert all(entry["help"] for entry in schema)


def test_the_engine_takes_risk_settings():
    bars = make_bars(3, 300)
    plain = run_backtest(bars, "sma_crossover", {"fast": 5, "slow": 20})
    for risk in (Risk(), {}, {"direction": "long", "position_size": 1}):
        same = run_backtest(bars, "sma_crossover", {"fast": 5, "slow": 20}, risk=risk)
        assert same.equity.tolist() == plain.equity.tolist()
    with pytest.raises(ParamError, match="position_size"):
        run_many(bars, [("sma_crossover", {})], risk={"position_size": 0})
