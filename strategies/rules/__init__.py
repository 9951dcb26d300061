"""The strategy rule language: parse, check and compile a trader's rules.

    spec = compile_strategy(source, key="dip")      # RuleError if invalid
    run_backtest(bars, spec, {"trend": 150})         # like a built-in's key

No Django here; the README describes the language.
"""

from strategies.rules.errors import Problem, RuleError
from strategies.rules.examples import BUILTINS
from strategies.rules.program import (
    Program,
    RuleParam,
    compile_program,
    compile_strategy,
)

__all__ = [
    "BUILTINS",
    "Problem",
    "Program",
    "RuleError",
    "RuleParam",
    "compile_program",
    "compile_strategy",
]
