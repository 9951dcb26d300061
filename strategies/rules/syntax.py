"""Parse one rule's expression into a checked, position-free tree.

Python's own parser (``ast.parse(..., mode="eval")``) reads the text, behind
checks that keep it from deep recursion: brackets nested deeper than the
limit, long runs of prefix operators and more atoms than the node limit are
refused by a scan of the text first. The tree is then walked against a strict
whitelist; nothing is ever evaluated by Python.

The result is made of tuples, equal for equal expressions whatever their
spacing or place, so that they key the indicator cache:

    ("num", value) ("series", name) ("param", name) ("neg", x)
    ("bin", op, a, b) with op in + - * /      ("call", name, (args...))
    ("cmp", op, a, b) with op in < <= > >=    ("and", (c...)) ("or", (c...))
    ("not", c)
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping

from strategies.rules.errors import Problem, problem, suggest
from strategies.rules.language import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_NODES,
    MAX_NUMBER,
    MAX_NUMBER_TEXT,
    MAX_WINDOW,
    MIN_WINDOW,
    SERIES,
)
from strategies.rules.reader import ParamLine, RuleText

Node = tuple

_TOKEN = re.compile(
    r"(?P<num>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]*)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<open>[(\[{])|(?P<close>[)\]}])"
    r"|(?P<space>\s+)|(?P<other>.)",
    re.ASCII,
)
# Numbers as the language writes them: no hex, underscores or imaginary parts.
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_PREFIX = frozenset(("not", "-", "+", "~"))
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_REFUSED_OPS = {
    ast.Pow: "'**'",
    ast.Mod: "'%'",
    ast.FloorDiv: "'//'",
    ast.MatMult: "'@'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
    ast.BitXor: "'^'",
    ast.Eq: "'=='",
    ast.NotEq: "'!='",
    ast.In: "'in'",
    ast.NotIn: "'not in'",
    ast.Is: "'is'",
    ast.IsNot: "'is not'",
}
_REFUSED_NODES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "strings",
    ast.FormattedValue: "strings",
    ast.NamedExpr: "assignments (:=)",
    ast.IfExp: "conditional expressions",
    ast.Tuple: "tuples",
    ast.List: "lists",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Starred: "'*' arguments",
    ast.Slice: "slices",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


def scan(rule: RuleText) -> list[Problem]:
    """Return the problems a scan of the text finds before any parsing."""
    text = rule.text
    for offset, char in enumerate(text):
        if ord(char) > 127:
            return [
                _at(
                    rule,
                    offset,
                    "only ASCII characters may be used outside "
                    f"comments, found {char!r}",
                )
            ]
    depth = run = atoms = 0
    for token in _TOKEN.finditer(text):
        kind, value, offset = token.lastgroup, token.group(), token.start()
        if kind == "space":
            continue
        run = run + 1 if value in _PREFIX else 0
        if run > MAX_DEPTH:
            return [
                _at(
                    rule,
                    offset,
                    f"more than {MAX_DEPTH} operators in a row "
                    f"(the nesting limit is {MAX_DEPTH})",
                )
            ]
        if kind == "open":
            depth += 1
            if depth > MAX_DEPTH:
                return [_at(rule, offset, f"brackets nested deeper than {MAX_DEPTH}")]
        elif kind == "close":
            depth -= 1
        elif kind in ("num", "name"):
            atoms += 1
            if atoms > MAX_NODES:
                return [
                    _at(
                        rule,
                        offset,
                        f"expression has more than {MAX_NODES} syntax nodes",
                    )
                ]
            if kind == "num" and len(value) > MAX_NUMBER_TEXT:
                return [
                    _at(
                        rule,
                        offset,
                        f"number of {len(value)} characters; at most {MAX_NUMBER_TEXT}",
                    )
                ]
    return []


def _at(rule: RuleText, offset: int, message: str) -> Problem:
    """Return a problem at character ``offset`` of the rule's text."""
    return problem(*rule.place(offset), message)


def parse(rule: RuleText) -> ast.expr | list[Problem]:
    """Return the rule's Python expression tree, or its problems."""
    found = scan(rule)
    if found:
        return found
    try:
        tree = ast.parse(rule.text, mode="eval").body
    except SyntaxError as exc:
        # No offset (0): the text ended where more was expected.
        offset = exc.offset - 1 if exc.offset and exc.lineno == 1 else len(rule.text)
        return [_at(rule, min(offset, len(rule.text)), f"syntax error: {exc.msg}")]
    except (RecursionError, MemoryError):
        return [_at(rule, 0, "expression too deeply nested")]
    except ValueError as exc:  # e.g. an integer too long to convert
        return [_at(rule, 0, f"cannot read the expression: {exc}")]
    return _measure(rule, tree) or tree


def _measure(rule: RuleText, tree: ast.expr) -> list[Problem]:
    """Return the problems of the tree's size and depth (walked iteratively)."""
    count, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, ast.expr):
            depth -= 1  # keywords, comprehensions: count what they hold
        else:
            count += 1
            if depth > MAX_DEPTH:
                return [
                    _at(
                        rule,
                        tree.col_offset,
                        f"expression nested deeper than {MAX_DEPTH}",
                    )
                ]
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if count > MAX_NODES:
        return [
            _at(
                rule,
                tree.col_offset,
                f"expression has {count} syntax nodes; at most {MAX_NODES}",
            )
        ]
    return []


class Checker:
    """Turn checked Python trees into the language's trees, collecting problems."""

    def __init__(self, rule: RuleText, params: Mapping[str, ParamLine]) -> None:
        self.rule, self.params = rule, params
        self.errors: list[Problem] = []

    def fail(self, node: ast.AST, message: str) -> None:
        """Record a problem at ``node``."""
        self.errors.append(_at(self.rule, getattr(node, "col_offset", 0), message))

    def condition(self, node: ast.expr) -> Node | None:
        """Return the tree of a condition, or None (problem recorded)."""
        found = self.walk(node)
        if found is None:
            return None
        tree, kind = found
        if kind != "bool":
            self.fail(
                node,
                "expected a condition (a comparison, crosses_above/"
                "crosses_below, and/or/not), got a number",
            )
            return None
        return tree

    def number(self, node: ast.expr) -> Node | None:
        """Return the tree of a numeric expression, or None (problem recorded)."""
        found = self.walk(node)
        if found is None:
            return None
        tree, kind = found
        if kind != "num":
            self.fail(node, "expected a number or series, got a condition")
            return None
        return tree

    def walk(self, node: ast.expr) -> tuple[Node, str] | None:
        """Return (tree, "num" or "bool") of any expression, or None."""
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            what = _REFUSED_NODES.get(type(node), type(node).__name__)
            self.fail(node, f"{what} not allowed in a rule")
            return None
        return method(node)

    def _Constant(self, node: ast.Constant) -> tuple[Node, str] | None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            what = "strings" if isinstance(value, str | bytes) else repr(value)
            self.fail(node, f"{what} not allowed in a rule")
            return None
        written = self.rule.text[node.col_offset : node.end_col_offset]
        if not _DECIMAL.fullmatch(written):
            self.fail(node, f"number {written!r}: write numbers in plain decimal")
            return None
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            self.fail(node, f"number out of range (at most {MAX_NUMBER:g} in size)")
            return None
        return ("num", value), "num"

    def _Name(self, node: ast.Name) -> tuple[Node, str] | None:
        name = node.id
        if name in SERIES:
            return ("series", name), "num"
        if name in self.params:
            return ("param", name), "num"
        if name in FUNCTIONS:
            self.fail(node, f"{name!r} is a function: call it, e.g. {_usage(name)}")
            return None
        hint = suggest(name, [*SERIES, *self.params, *FUNCTIONS])
        self.fail(node, f"unknown name {name!r}{hint}")
        return None

    def _UnaryOp(self, node: ast.UnaryOp) -> tuple[Node, str] | None:
        if isinstance(node.op, ast.Not):
            inner = self.condition(node.operand)
            return None if inner is None else (("not", inner), "bool")
        if isinstance(node.op, ast.USub):
            inner = self.number(node.operand)
            return None if inner is None else (("neg", inner), "num")
        self.fail(
            node,
            f"unary {'+' if isinstance(node.op, ast.UAdd) else '~'} "
            "not allowed in a rule (only unary -)",
        )
        return None

    def _BinOp(self, node: ast.BinOp) -> tuple[Node, str] | None:
        op = _BINARY.get(type(node.op))
        left, right = self.number(node.left), self.number(node.right)
        if op is None:
            refused = _REFUSED_OPS.get(type(node.op), "this operator")
            self.fail(node, f"{refused} not allowed in a rule; use + - * /")
            return None
        if left is None or right is None:
            return None
        return ("bin", op, left, right), "num"

    def _BoolOp(self, node: ast.BoolOp) -> tuple[Node, str] | None:
        items = [self.condition(value) for value in node.values]
        if any(item is None for item in items):
            return None
        kind = "and" if isinstance(node.op, ast.And) else "or"
        return (kind, tuple(items)), "bool"

    def _Compare(self, node: ast.Compare) -> tuple[Node, str] | None:
        operands = [self.number(node.left)] + [self.number(c) for c in node.comparators]
        ops = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _COMPARE:
                refused = _REFUSED_OPS.get(type(op), "this comparison")
                self.fail(
                    right, f"{refused} not allowed in a rule; compare with < <= > >="
                )
                return None
            ops.append(_COMPARE[type(op)])
        if any(item is None for item in operands):
            return None
        pairs = tuple(
            ("cmp", op, operands[i], operands[i + 1]) for i, op in enumerate(ops)
        )
        return (pairs[0] if len(pairs) == 1 else ("and", pairs)), "bool"

    def _Call(self, node: ast.Call) -> tuple[Node, str] | None:
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the language's functions may be called")
            return None
        name = node.func.id
        function = FUNCTIONS.get(name)
        if function is None:
            if name in SERIES or name in self.params:
                self.fail(node, f"{name!r} is not a function")
            else:
                hint = suggest(name, FUNCTIONS)
                self.fail(node, f"unknown function {name!r}{hint}")
            return None
        if node.keywords:
            self.fail(
                node.keywords[0].value,
                f"keyword arguments not allowed: "
                f"{_usage(name)} takes positional arguments only",
            )
            return None
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            self.fail(node, "'*' arguments not allowed in a rule")
            return None
        if len(node.args) != len(function.args):
            count = len(function.args)
            self.fail(
                node,
                f"{name} takes {count} argument{'s' * (count != 1)} "
                f"{_usage(name)}, got {len(node.args)}",
            )
            return None
        args = []
        for arg, kind, label in zip(
            node.args, function.args, function.names, strict=True
        ):
            if kind == "n":
                args.append(self.window(arg, name, label))
            elif kind == "k":
                args.append(self.factor(arg, name, label))
            else:
                args.append(self.number(arg))
        if any(arg is None for arg in args):
            return None
        return ("call", name, tuple(args)), function.result

    def window(self, node: ast.expr, function: str, label: str) -> Node | None:
        """Return a window argument: an int constant or int parameter in range."""
        where = f"{function}: {label}"
        limits = f"from {MIN_WINDOW} to {MAX_WINDOW:,}"
        if isinstance(node, ast.Constant) and type(node.value) is int:
            if self._Constant(node) is None:
                return None
            if not MIN_WINDOW <= node.value <= MAX_WINDOW:
                self.fail(node, f"{where} must be {limits}, got {node.value}")
                return None
            return ("num", node.value)
        if isinstance(node, ast.Name) and node.id in self.params:
            param = self.params[node.id]
            if param.type is not int:
                self.fail(
                    node, f"{where} must be an int parameter; {node.id!r} is a float"
                )
                return None
            if param.low < MIN_WINDOW or param.high > MAX_WINDOW:
                self.fail(
                    node,
                    f"{where} must be {limits}, but {node.id!r} may be "
                    f"{param.low}..{param.high}",
                )
                return None
            return ("param", node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self.fail(node, f"{where} must be {limits}, got a negative number")
            return None
        if isinstance(node, ast.Name) and node.id not in SERIES | FUNCTIONS.keys():
            return self.walk(node)  # the unknown name's own message
        self.fail(node, f"{where} must be a whole number or an int parameter")
        return None

    def factor(self, node: ast.expr, function: str, label: str) -> Node | None:
        """Return a number argument: a constant (maybe negated) or a parameter."""
        inner = node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = node.operand
        if isinstance(inner, ast.Constant) or (
            isinstance(inner, ast.Name) and inner.id in self.params and inner is node
        ):
            return self.number(node)
        if isinstance(node, ast.Name) and node.id not in SERIES | FUNCTIONS.keys():
            return self.walk(node)
        self.fail(node, f"{function}: {label} must be a number or a parameter")
        return None


def _usage(name: str) -> str:
    """Return how function ``name`` is called, e.g. "sma(x, n)"."""
    return f"{name}({', '.join(FUNCTIONS[name].names)})"


def compile_rule(rule: RuleText, params: Mapping[str, ParamLine]) -> Node | list:
    """Return a rule's checked condition tree, or its problems."""
    tree = parse(rule)
    if isinstance(tree, list):
        return tree
    checker = Checker(rule, params)
    result = checker.condition(tree)
    if checker.errors or result is None:
        return checker.errors
    return result
