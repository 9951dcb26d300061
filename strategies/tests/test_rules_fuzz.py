"""Hostile rule programs: each is refused with a RuleError and nothing else,
and none runs anything (a canary file an escape would create never appears)."""

from __future__ import annotations

import itertools
import random

import pytest

from strategies.rules.errors import RuleError
from strategies.rules.program import compile_program


def fragments(canary: str) -> list[str]:
    """Return expression pieces the language must refuse wherever they go."""
    touch = f"'touch {canary}'"
    escapes = [
        f"__import__('os').system({touch})",
        f'__import__("os").system({touch}) > 0',
        f"eval(\"__import__('os').system({touch})\")",
        f'exec("import os; os.system({touch})")',
        f"getattr(__import__('os'), 'system')({touch})",
        "().__class__.__bases__[0].__subclasses__()",
        "close.__class__.__mro__[1].__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        f"(lambda: __import__('os').system({touch}))()",
        f"f\"{{__import__('os').system({touch})}}\"",
        f"(x := __import__('os')).system({touch})",
        "globals()['__builtins__']",
        f"open({touch!r}, 'w')",
        f"sma(close, __import__('os').system({touch}))",
        f"sma(close, n=__import__('os').system({touch}))",
        "breakpoint()",
        "import os",
        f"close; __import__('os').system({touch})",
        f"close\n__import__('os').system({touch})",
    ]
    odd = [
        "close.real",
        "close[0]",
        "close[1:2]",
        "{1: 2}",
        "{1, 2}",
        "(1, 2)",
        "[1, 2]",
        "'text'",
        "b'bytes'",
        "u'x'",
        "r'x'",
        "...",
        "None",
        "True",
        "1j",
        "2 ** 3",
        "2 % 3",
        "2 // 3",
        "2 @ 3",
        "2 << 1",
        "2 >> 1",
        "2 | 1",
        "2 & 1",
        "2 ^ 1",
        "~close",
        "+close",
        "close == 1",
        "close != 1",
        "close is None",
        "close in close",
        "close not in close",
        "close if close else close",
        "lambda x: x",
        "(yield)",
        "await close",
        "*close",
        "**close",
        "sma(close, 3, n=4)",
        "sma(*[close, 3])",
        "sma(**{})",
        "sma(close)",
        "sma(close, 3, 4)",
        "atr()",
        "prev(close, 0)",
        "prev(close, -1)",
        "prev(close, 10**9)",
        "sma(close, 1000000000)",
        "sma(close, 0)",
        "ema(close, 2.5)",
        "rsi(close, close)",
        "smaa(close, 3)",
        "clsoe",
        "foo",
        "__name__",
        "__builtins__",
        "1e309",
        "-1e309",
        "9" * 400,
        "1" * 31,
        "0x10",
        "0b1",
        "1_000_000_000_000_000",
        "\x00",
        "close\x00",
        "\u00e9t\u00e9",
        "\uff43\uff4c\uff4f\uff53\uff45",
        "close >",
        "> close",
        "(close",
        "close)",
        "sma(close, 3",
        "",
        "   ",
        "# only a comment",
        "not",
        "and",
        "close and",
        "crosses_above(close)",
        "abs(close, close)",
        "min(close)",
        "max(close, close, close)",
        "bb_upper(close, 20, close)",
        "macd(close, 12)",
        "macd_signal(close, 12, 26)",
        "roc(close)",
        "highest(close, 0)",
        "lowest(close, 10001)",
        "stdev(close, -3)",
    ]
    return escapes + odd


TEMPLATES = [
    "long when: close > {f}",
    "long when: {f}",
    "long when: {f} > 1",
    "long when: sma(close, {f}) > 1",
    "long entry: close > 1\nlong exit: {f} < close",
    "short when: not ({f})",
    "param x: int = 1 in 1..5\nlong when: close > x and ({f})",
    "param {f}: int = 1 in 1..5\nlong when: close > 1 and {f}",
]


def sources(canary: str) -> list[object]:
    """Return at least 500 hostile programs."""
    out: list[object] = [t.format(f=f) for t in TEMPLATES for f in fragments(canary)]
    out += [
        "long when: close > 1 # " + "x" * (1 << 20),
        "long when: " + "(" * 100_000 + "close" + ")" * 100_000 + " > 1",
        "long when: " + "(" * 3_000 + "close" + ")" * 3_000 + " > 1",
        "long when: " + "not " * 10_000 + "close > 1",
        "long when: " + "not " * 1_500 + "close > 1",
        "long when: " + "-" * 5_000 + "close > 1",
        "long when: " + " + ".join(["close"] * 1_500) + " > 1",
        "long when: " + "sma(" * 40 + "close" + ", 2)" * 40 + " > 1",
        "long when: " + " and ".join(["close > 1"] * 200),
        b"long when: close > 1",
        b"long when: \xff\xfe > 1",
        b"long when: \xff > 1".decode("utf-8", "surrogateescape"),
        "long when: close > 1\x00",
        "\x00" * 10,
        None,
        42,
        ["long when: close > 1"],
        "long when: close > 1\nlong when: close > 2",
        "long when: close > 1\nlong entry: close > 2",
        "long exit: close > 1",
        "\n".join(f"param p{i}: int = 1 in 1..2" for i in range(21))
        + "\nlong when: close > 1",
        "long when: " + " and ".join(f"sma(close, {n}) > 1" for n in range(1, 42)),
    ]
    # Random splices of hostile pieces into a valid program, fixed seed.
    rng = random.Random(20240607)
    valid = "param fast: int = 5 in 2..50\nlong when: sma(close, fast) > close\n"
    pieces = fragments(canary)[:19] + ["**", "__", "'", "lambda", ":=", "[", "{"]
    for _ in range(120):
        at = rng.randrange(len(valid))
        piece = rng.choice(pieces)
        out.append(valid[:at] + piece + valid[at:])
    return out


def test_hostile_programs_are_refused_and_run_nothing(tmp_path):
    canary = tmp_path / "CANARY"
    programs = sources(str(canary))
    assert len(programs) >= 500
    refused = 0
    for source in programs:
        try:
            compile_program(source)
        except RuleError as error:
            assert error.errors and all(
                set(e) == {"line", "col", "message"}
                and e["line"] >= 1
                and e["col"] >= 1
                for e in error.errors
            )
            refused += 1
            continue
        # A splice may land in a comment or make another valid program; it
        # must then still be one of the language's own.
        assert isinstance(source, str) and "__" not in source.split("#")[0], source
    assert refused >= 500
    assert not canary.exists()


@pytest.mark.parametrize("piece", ["__import__", "__class__", "__builtins__"])
def test_dunder_names_are_refused_in_every_slot(piece):
    for template in TEMPLATES:
        with pytest.raises(RuleError):
            compile_program(template.format(f=piece))


def test_every_fragment_in_every_template_is_refused(tmp_path):
    canary = str(tmp_path / "CANARY")
    for template, piece in itertools.product(TEMPLATES, fragments(canary)):
        with pytest.raises(RuleError):
            compile_program(template.format(f=piece))
