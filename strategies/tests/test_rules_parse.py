"""The rule language's reader and checker: what parses, and every refusal."""

from __future__ import annotations

import ast

import pytest

from strategies.rules import syntax as syntax_module
from strategies.rules.errors import RuleError
from strategies.rules.language import MAX_INDICATORS
from strategies.rules.program import compile_program, compile_strategy

VALID = """\
# RSI dip in an uptrend. Comments start with #.
param trend: int = 200 in 50..400   # Trend filter length.
param level: float = 30 in 5..50 step 0.5

long entry: close > sma(close, trend) and rsi(close, 14) < level
long exit:  rsi(close, 14) > 70 or crosses_below(close, sma(close, trend))
"""


def errors_of(source: object) -> list[dict]:
    """Return the problems compiling ``source`` raises (it must raise)."""
    with pytest.raises(RuleError) as caught:
        compile_program(source)
    assert isinstance(caught.value, ValueError)
    assert caught.value.errors, "a RuleError names at least one problem"
    return caught.value.errors


def only_error(source: object) -> dict:
    found = errors_of(source)
    assert len(found) == 1, found
    return found[0]


def test_the_design_example_compiles_with_its_schema():
    spec = compile_strategy(VALID, key="dip", name="RSI dip")
    schema = spec.as_dict()
    assert schema["key"] == "dip" and schema["name"] == "RSI dip"
    trend, level = schema["params"]
    assert trend == {
        "name": "trend",
        "type": "int",
        "default": 200,
        "min": 50,
        "max": 400,
        "help": "Trend filter length.",
        "step": None,
    }
    assert level["type"] == "float" and level["default"] == 30.0
    assert level["step"] == 0.5 and (level["min"], level["max"]) == (5.0, 50.0)
    program = spec.signal.__self__
    assert program.directions == ("long",)
    assert set(program.rules) == {("long", "entry"), ("long", "exit")}


def test_continuation_lines_and_columns_map_back_to_the_source():
    source = "long when: close > 1 and\n    clsoe < 5\n"
    (error,) = errors_of(source)
    assert (error["line"], error["col"]) == (2, 5)
    assert error["message"] == "unknown name 'clsoe' (did you mean 'close'?)"


def test_message_format_names_line_and_column():
    source = "param fast: int = 5 in 2..10\n\n\n\n"
    source += "long when: close > 1 and smaa(close, 3) > 2"
    with pytest.raises(RuleError) as caught:
        compile_program(source)
    assert str(caught.value) == (
        "line 5, col 26: unknown function 'smaa' (did you mean 'sma'?)"
    )


def test_same_trees_for_different_spacing_and_comments():
    a = compile_program("long when: sma(close,5)>sma(close,10)")
    b = compile_program("# c\nlong when:   sma( close , 5 ) >\n  sma(close, 10)  # x")
    assert a.rules == b.rules


def test_chains_and_ge_le_compile():
    program = compile_program("long when: 1 < close <= 5 and not close >= 3")
    tree = program.rules[("long", "when")]
    assert tree[0] == "and" and tree[1][0][0] == "and"


@pytest.mark.parametrize(
    ("source", "line", "col", "message"),
    [
        # the reader
        (
            "  long when: close > 1",
            1,
            3,
            "an indented line continues a rule; there is none before it",
        ),
        (
            "param a: int = 1 in 1..5\nparam a: int = 2 in 1..5\nlong when: close > a",
            2,
            7,
            "parameter 'a' is declared twice",
        ),
        (
            "buy when: close > 1",
            1,
            1,
            "a rule starts with 'long' or 'short', not 'buy'",
        ),
        (
            "long while: close > 1",
            1,
            6,
            "a rule is 'long when', 'entry' or 'exit', not 'while'",
        ),
        (
            "close > 1",
            1,
            1,
            "expected a rule such as 'long when: ...' or a parameter "
            "'param NAME: int|float = DEFAULT in MIN..MAX [step S]'",
        ),
        (
            "long when: close > 1\nlong when: close > 2",
            2,
            1,
            "'long when' is given twice",
        ),
        (
            "# nothing",
            1,
            1,
            "no rules: give at least 'long when:', 'long entry:', "
            "'short when:' or 'short entry:'",
        ),
        (
            "long when: close > 1\nlong entry: close > 2",
            2,
            1,
            "'long when' and 'long entry' exclude each other",
        ),
        (
            "short exit: close > 1\nlong when: close > 1",
            1,
            1,
            "'short exit' needs a 'short entry'",
        ),
        ("long when:   # later", 1, 11, "'long when' has no expression"),
        (
            "param x int = 1 in 1..2\nlong when: close > 1",
            1,
            1,
            "expected 'param NAME: int|float = DEFAULT in MIN..MAX [step S]'",
        ),
        (
            "param Fast: int = 1 in 1..2\nlong when: close > 1",
            1,
            7,
            "parameter name 'Fast': use lower-case letters, digits and '_', starting "
            "with a letter",
        ),
        (
            "param close: int = 1 in 1..2\nlong when: close > 1",
            1,
            7,
            "parameter name 'close' is a series",
        ),
        (
            "param sma: int = 1 in 1..2\nlong when: close > 1",
            1,
            7,
            "parameter name 'sma' is a function",
        ),
        (
            "param lambda: int = 1 in 1..2\nlong when: close > 1",
            1,
            7,
            "parameter name 'lambda' is a reserved word",
        ),
        (
            "param a: str = 1 in 1..2\nlong when: close > a",
            1,
            10,
            "parameter type must be 'int' or 'float', not 'str'",
        ),
        (
            "param a: int = x in 1..2\nlong when: close > a",
            1,
            16,
            "default 'x' is not a number (at most 1e+15 in size)",
        ),
        (
            "param a: float = 1e309 in 1..2\nlong when: close > a",
            1,
            18,
            "default '1e309' is not a number (at most 1e+15 in size)",
        ),
        (
            "param a: int = 1.5 in 1..2\nlong when: close > a",
            1,
            16,
            "default of an int parameter must be a whole number, got '1.5'",
        ),
        (
            "param a: int = 1 in 5..2\nlong when: close > a",
            1,
            21,
            "minimum 5 is above the maximum 2",
        ),
        (
            "param a: int = 9 in 1..5\nlong when: close > a",
            1,
            16,
            "default 9 is not in 1..5",
        ),
        (
            "param a: float = 1 in 0..5 step 0\nlong when: close > a",
            1,
            33,
            "step must be above 0, got 0",
        ),
        # the scan before parsing
        (
            "long when: close > 1 and cl\u00f6se > 2",
            1,
            28,
            "only ASCII characters may be used outside comments, found '\u00f6'",
        ),
        (
            "long when: " + "- " * 31 + "close > 1",
            1,
            72,
            "more than 30 operators in a row (the nesting limit is 30)",
        ),
        (
            "long when: " + "(" * 31 + "close" + ")" * 31 + " > 1",
            1,
            42,
            "brackets nested deeper than 30",
        ),
        (
            "long when: " + " + ".join(["close"] * 301) + " > 1",
            1,
            11 + 8 * 300 + 1,
            "expression has more than 300 syntax nodes",
        ),
        (
            "long when: close > " + "1" * 31,
            1,
            20,
            "number of 31 characters; at most 30",
        ),
        ("long when: close >", 1, 19, "syntax error: invalid syntax"),
        # the tree
        (
            "long when: " + " + ".join(["close"] * 31) + " > 1",
            1,
            12,
            "expression nested deeper than 30",
        ),
        (
            "long when: " + " and ".join(["close > 1"] * 100),
            1,
            12,
            "expression has 301 syntax nodes; at most 300",
        ),
        (
            "long when: close + 1",
            1,
            12,
            "expected a condition (a comparison, "
            "crosses_above/crosses_below, and/or/not), got a number",
        ),
        (
            "long when: sma(close > 1, 3) > 1",
            1,
            16,
            "expected a number or series, got a condition",
        ),
        ("long when: close > True", 1, 20, "True not allowed in a rule"),
        ("long when: close > None", 1, 20, "None not allowed in a rule"),
        ("long when: close > 'a'", 1, 20, "strings not allowed in a rule"),
        (
            "long when: close > 0x10",
            1,
            20,
            "number '0x10': write numbers in plain decimal",
        ),
        (
            "long when: sma(close, 1_0) > 1",
            1,
            23,
            "number '1_0': write numbers in plain decimal",
        ),
        (
            "long when: close > 1e16",
            1,
            20,
            "number out of range (at most 1e+15 in size)",
        ),
        (
            "long when: close > 1e309",
            1,
            20,
            "number out of range (at most 1e+15 in size)",
        ),
        ("long when: sma > 1", 1, 12, "'sma' is a function: call it, e.g. sma(x, n)"),
        (
            "long when: +close > 1",
            1,
            12,
            "unary + not allowed in a rule (only unary -)",
        ),
        (
            "long when: ~close > 1",
            1,
            12,
            "unary ~ not allowed in a rule (only unary -)",
        ),
        ("long when: close ** 2 > 1", 1, 12, "'**' not allowed in a rule; use + - * /"),
        ("long when: close % 2 > 1", 1, 12, "'%' not allowed in a rule; use + - * /"),
        (
            "long when: close > 1 and close",
            1,
            26,
            "expected a condition (a "
            "comparison, crosses_above/crosses_below, and/or/not), got a number",
        ),
        (
            "long when: close == 1",
            1,
            21,
            "'==' not allowed in a rule; compare with < <= > >=",
        ),
        (
            "long when: close in 1",
            1,
            21,
            "'in' not allowed in a rule; compare with < <= > >=",
        ),
        (
            "long when: close.max() > 1",
            1,
            12,
            "only the language's functions may be called",
        ),
        ("long when: close(3) > 1", 1, 12, "'close' is not a function"),
        (
            "long when: smaa(close, 3) > 1",
            1,
            12,
            "unknown function 'smaa' (did you mean 'sma'?)",
        ),
        (
            "long when: sma(x=close, n=3) > 1",
            1,
            18,
            "keyword arguments not allowed: sma(x, n) takes positional arguments only",
        ),
        ("long when: sma(*close) > 1", 1, 12, "'*' arguments not allowed in a rule"),
        (
            "long when: sma(close, 3, 4) > 1",
            1,
            12,
            "sma takes 2 arguments sma(x, n), got 3",
        ),
        ("long when: atr(3, 4) > 1", 1, 12, "atr takes 1 argument atr(n), got 2"),
        (
            "long when: sma(close, 0) > 1",
            1,
            23,
            "sma: n must be from 1 to 10,000, got 0",
        ),
        (
            "long when: prev(close, 10001) > 1",
            1,
            24,
            "prev: n must be from 1 to 10,000, got 10001",
        ),
        (
            "long when: sma(close, -1) > 1",
            1,
            23,
            "sma: n must be from 1 to 10,000, got a negative number",
        ),
        (
            "long when: sma(close, 2.0) > 1",
            1,
            23,
            "sma: n must be a whole number or an int parameter",
        ),
        (
            "long when: sma(close, 2 + 3) > 1",
            1,
            23,
            "sma: n must be a whole number or an int parameter",
        ),
        (
            "long when: sma(close, close) > 1",
            1,
            23,
            "sma: n must be a whole number or an int parameter",
        ),
        ("long when: sma(close, fsat) > 1", 1, 23, "unknown name 'fsat'"),
        (
            "param k: float = 2 in 1..3\nlong when: sma(close, k) > 1",
            2,
            23,
            "sma: n must be an int parameter; 'k' is a float",
        ),
        (
            "param n: int = 2 in 0..3\nlong when: sma(close, n) > 1",
            2,
            23,
            "sma: n must be from 1 to 10,000, but 'n' may be 0..3",
        ),
        (
            "param n: int = 2 in 1..20000\nlong when: ema(close, n) > 1",
            2,
            23,
            "ema: n must be from 1 to 10,000, but 'n' may be 1..20000",
        ),
        (
            "long when: bb_upper(close, 20, close) > 1",
            1,
            32,
            "bb_upper: k must be a number or a parameter",
        ),
        ("long when: bb_upper(close, 20, kk) > 1", 1, 32, "unknown name 'kk'"),
        ("long when: [close] > 1", 1, 12, "lists not allowed in a rule"),
        ("long when: close[1] > 1", 1, 12, "subscripts not allowed in a rule"),
        (
            "long when: (close if 1 else 2) > 1",
            1,
            13,
            "conditional expressions not allowed in a rule",
        ),
    ],
)
def test_each_refusal_names_its_place(source, line, col, message):
    error = only_error(source)
    assert error == {"line": line, "col": col, "message": message}


def test_several_problems_are_reported_together_in_source_order():
    found = errors_of("long when: smaa(close, 2) > 1\nshort when: close > clsoe")
    assert [(e["line"], e["col"]) for e in found] == [(1, 12), (2, 21)]


def test_too_many_parameters():
    lines = [f"param p{i}: int = 1 in 1..2" for i in range(21)]
    error = only_error("\n".join([*lines, "long when: close > 1"]))
    assert error == {
        "line": 21,
        "col": 1,
        "message": "21 parameters; a program may have at most 20",
    }


def test_too_many_indicator_calls():
    calls = " and ".join(f"sma(close, {n}) > 1" for n in range(1, MAX_INDICATORS + 2))
    error = only_error(f"long when: {calls}")
    assert (
        error["message"] == "41 distinct indicator calls; a program may have at most 40"
    )
    # The same call twice counts once.
    compile_program("long when: " + " and ".join(["sma(close, 3) > 1"] * 45))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"long when: close > 1", "source must be text, got bytes"),
        (None, "source must be text, got NoneType"),
        ("x" * 8193, "source is 8,193 bytes; a program may have at most 8,192"),
        (
            "#" + "\u00e9" * 4096,
            "source is 8,193 bytes; a program may have at most 8,192",
        ),
        ("long when: close > 1\x00", "NUL byte (U+0000) in the source"),
        ("long when: close > 1\x0c", "control character (U+000C) in the source"),
        (
            b"long when: \xff > 1".decode("utf-8", "surrogateescape"),
            "source is not valid text (undecodable bytes)",
        ),
    ],
)
def test_text_checks_before_reading(source, message):
    assert only_error(source)["message"] == message


def test_parser_failures_become_rule_errors(monkeypatch):
    for exc, message in [
        (RecursionError(), "expression too deeply nested"),
        (MemoryError(), "expression too deeply nested"),
        (ValueError("too long"), "cannot read the expression: too long"),
    ]:

        def failing(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(syntax_module.ast, "parse", failing)
        assert only_error("long when: close > 1")["message"] == message
    monkeypatch.setattr(syntax_module.ast, "parse", ast.parse)


def test_a_missing_side_is_an_error_naming_it():
    from strategies.engine import run_backtest
    from strategies.params import ParamError
    from strategies.tests.test_engine import make_bars

    bars = make_bars(1, 300)
    short_only = compile_strategy("short when: close < sma(close, 5)")
    with pytest.raises(ParamError, match="direction: the strategy has no long rules"):
        run_backtest(bars, short_only)
    long_only = compile_strategy("long when: close > sma(close, 5)")
    with pytest.raises(ParamError, match="has no short rules; it can run long"):
        run_backtest(bars, long_only, risk={"direction": "both"})
    assert run_backtest(bars, short_only, risk={"direction": "short"}).trades
