"""Read a rule program's text: the size and character checks, ``param`` lines
and rule lines (with their indented continuations), comments dropped.

Nothing here parses an expression; each rule's text is kept with a map from
its characters back to the source's lines and columns.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field

from strategies.params import parse_decimal
from strategies.rules.errors import Problem, RuleError, problem
from strategies.rules.language import (
    FUNCTIONS,
    KINDS,
    MAX_NUMBER,
    MAX_PARAMS,
    MAX_SOURCE_BYTES,
    RESERVED,
    SERIES,
    SIDES,
)

_NAME = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)
_RULE = re.compile(r"(long|short)\s+(when|entry|exit)\s*:", re.ASCII)
_RULE_START = re.compile(r"[A-Za-z_]+\s+[A-Za-z_]+\s*:", re.ASCII)
_PARAM = re.compile(
    r"param\s+(?P<name>[^\s:]*)\s*:\s*(?P<type>\S*)\s*=\s*(?P<default>\S+)"
    r"\s+in\s+(?P<low>\S+?)\.\.(?P<high>\S+?)(?:\s+step\s+(?P<step>\S+))?\s*",
    re.ASCII,
)
_PARAM_FORM = "param NAME: int|float = DEFAULT in MIN..MAX [step S]"


@dataclass(frozen=True)
class ParamLine:
    """A declared parameter, as written."""

    name: str
    type: type
    default: int | float
    low: int | float
    high: int | float
    step: int | float | None
    line: int
    help: str = ""


@dataclass
class RuleText:
    """One rule's expression text and where each piece of it came from.

    ``pieces`` holds (offset in ``text``, line, column of that character in
    the source), one per source line the expression spans.
    """

    side: str
    kind: str
    text: str
    line: int
    col: int
    pieces: list[tuple[int, int, int]] = field(default_factory=list)

    def place(self, offset: int) -> tuple[int, int]:
        """Return the source (line, col) of character ``offset`` of the text."""
        start, line, col = self.pieces[0]
        for piece in self.pieces:
            if piece[0] <= offset:
                start, line, col = piece
        return line, col + max(offset - start, 0)

    def add(self, piece: str, line: int, col: int) -> None:
        """Append one line's part of the expression, starting at ``col``."""
        if self.text:
            self.text += " "
        self.pieces.append((len(self.text), line, col))
        self.text += piece


@dataclass
class Source:
    """A program's parameters and rules, read but not yet compiled."""

    params: list[ParamLine]
    rules: dict[tuple[str, str], RuleText]


def check_text(source: object) -> str:
    """Return the source if it is text a program may be, or raise RuleError.

    Checked before anything else looks at it: the type, the size (in UTF-8
    bytes), NUL and other control characters, and text that is not valid
    Unicode (lone surrogates, as undecodable bytes turn into).
    """
    if not isinstance(source, str):
        raise RuleError(
            [problem(1, 1, f"source must be text, got {type(source).__name__}")]
        )
    if len(source) > MAX_SOURCE_BYTES:
        raise RuleError([_too_large(len(source))])
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as exc:
        line, col = _position(source, exc.start)
        raise RuleError(
            [problem(line, col, "source is not valid text (undecodable bytes)")]
        ) from None
    if size > MAX_SOURCE_BYTES:
        raise RuleError([_too_large(size)])
    bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", source)
    if bad:
        line, col = _position(source, bad.start())
        what = "NUL byte" if bad.group() == "\0" else "control character"
        code = f"U+{ord(bad.group()):04X}"
        raise RuleError([problem(line, col, f"{what} ({code}) in the source")])
    return source


def _too_large(size: int) -> Problem:
    return problem(
        1,
        1,
        f"source is {size:,} bytes; a program may have at most {MAX_SOURCE_BYTES:,}",
    )


def _position(text: str, offset: int) -> tuple[int, int]:
    """Return the 1-based (line, col) of character ``offset`` of ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def read(source: object) -> Source:
    """Return the program's parameter and rule lines, or raise RuleError."""
    text = check_text(source)
    errors: list[Problem] = []
    params: list[ParamLine] = []
    rules: dict[tuple[str, str], RuleText] = {}
    current: RuleText | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line, _, comment = raw.partition("#")
        line = line.rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        body = line.lstrip()
        if indent:
            if current is None:
                errors.append(
                    problem(
                        number,
                        indent + 1,
                        "an indented line continues a rule; there is none before it",
                    )
                )
            else:
                current.add(body, number, indent + 1)
            continue
        current = None
        if body.startswith("param ") or body == "param":
            found = _param(body, number, errors, comment.strip())
            if found:
                if any(p.name == found.name for p in params):
                    errors.append(
                        problem(
                            number, 7, f"parameter {found.name!r} is declared twice"
                        )
                    )
                else:
                    params.append(found)
            continue
        rule = _RULE.match(body)
        if not rule:
            errors.append(_not_a_rule(body, number))
            continue
        side, kind = rule.groups()
        if (side, kind) in rules:
            errors.append(problem(number, 1, f"'{side} {kind}' is given twice"))
            continue
        current = RuleText(side, kind, "", number, 1)
        expression = body[rule.end() :]
        start = rule.end() + len(expression) - len(expression.lstrip())
        current.add(expression.strip(), number, start + 1)
        rules[(side, kind)] = current
    if len(params) > MAX_PARAMS:
        errors.append(
            problem(
                params[MAX_PARAMS].line,
                1,
                f"{len(params)} parameters; a program may have at most {MAX_PARAMS}",
            )
        )
    errors.extend(_rule_set(rules, bool(errors)))
    if errors:
        raise RuleError(sorted(errors, key=lambda e: (e["line"], e["col"])))
    return Source(params, rules)


def _not_a_rule(body: str, number: int) -> Problem:
    """Return the problem of a line that is neither a parameter nor a rule."""
    start = _RULE_START.match(body)
    if start:
        words = start.group().rstrip(":").split()
        if words[0] not in SIDES:
            return problem(
                number, 1, f"a rule starts with 'long' or 'short', not {words[0]!r}"
            )
        return problem(
            number,
            body.index(words[1]) + 1,
            f"a rule is '{words[0]} when', 'entry' or 'exit', not {words[1]!r}",
        )
    return problem(
        number,
        1,
        f"expected a rule such as 'long when: ...' or a parameter '{_PARAM_FORM}'",
    )


def _rule_set(rules: dict[tuple[str, str], RuleText], others: bool) -> list[Problem]:
    """Return the problems of the set of rules as a whole (a missing rule only
    when nothing else is wrong: a misspelt rule line says more)."""
    errors = []
    if not rules and not others:
        errors.append(
            problem(
                1,
                1,
                "no rules: give at least 'long when:', "
                "'long entry:', 'short when:' or 'short entry:'",
            )
        )
    for side in SIDES:
        when, entry, exit_ = (rules.get((side, kind)) for kind in KINDS)
        if when and entry:
            later = max(when, entry, key=lambda r: r.line)
            errors.append(
                problem(
                    later.line,
                    1,
                    f"'{side} when' and '{side} entry' exclude each other",
                )
            )
        if exit_ and not entry:
            errors.append(
                problem(exit_.line, 1, f"'{side} exit' needs a '{side} entry'")
            )
    for rule in rules.values():
        if not rule.text:
            errors.append(
                problem(
                    rule.line,
                    rule.pieces[0][2],
                    f"'{rule.side} {rule.kind}' has no expression",
                )
            )
    return errors


def _param(
    body: str, number: int, errors: list[Problem], help: str
) -> ParamLine | None:
    """Return the parameter a ``param`` line declares, or None (problems added).

    A comment on the line is the parameter's help text.
    """
    match = _PARAM.fullmatch(body)
    if not match:
        errors.append(problem(number, 1, f"expected '{_PARAM_FORM}'"))
        return None
    col = {key: match.start(key) + 1 for key in match.groupdict()}
    name, type_name = match["name"], match["type"]
    found = len(errors)
    if not _NAME.fullmatch(name):
        errors.append(
            problem(
                number,
                col["name"],
                f"parameter name {name!r}: use lower-case "
                "letters, digits and '_', starting with a letter",
            )
        )
    elif name in RESERVED or keyword.iskeyword(name):
        what = (
            "a series"
            if name in SERIES
            else "a function"
            if name in FUNCTIONS
            else "a reserved word"
        )
        errors.append(
            problem(number, col["name"], f"parameter name {name!r} is {what}")
        )
    kind = {"int": int, "float": float}.get(type_name)
    if kind is None:
        errors.append(
            problem(
                number,
                col["type"],
                f"parameter type must be 'int' or 'float', not {type_name!r}",
            )
        )
    values: dict[str, int | float | None] = {}
    for key in ("default", "low", "high", "step"):
        text = match[key]
        if text is None:
            values[key] = None
            continue
        value = parse_decimal(text)
        where = {"low": "minimum", "high": "maximum"}.get(key, key)
        if value is None or not math.isfinite(value) or abs(value) > MAX_NUMBER:
            errors.append(
                problem(
                    number,
                    col[key],
                    f"{where} {text!r} is not a number "
                    f"(at most {MAX_NUMBER:g} in size)",
                )
            )
        elif kind is int and not isinstance(value, int):
            errors.append(
                problem(
                    number,
                    col[key],
                    f"{where} of an int parameter must be a whole number, got {text!r}",
                )
            )
        values[key] = value
    if len(errors) > found:
        return None
    default, low, high, step = (values[k] for k in ("default", "low", "high", "step"))
    if not low <= high:
        errors.append(
            problem(number, col["low"], f"minimum {low} is above the maximum {high}")
        )
    elif not low <= default <= high:
        errors.append(
            problem(
                number, col["default"], f"default {default} is not in {low}..{high}"
            )
        )
    if step is not None and not step > 0:
        errors.append(problem(number, col["step"], f"step must be above 0, got {step}"))
    if len(errors) > found:
        return None
    cast = kind if kind is int else float
    return ParamLine(
        name,
        kind,
        cast(default),
        cast(low),
        cast(high),
        None if step is None else cast(step),
        number,
        help,
    )
