"""The strategy rule language: parse, check and compile a trader's rules.

    from strategies.rules.program import compile_strategy
    spec = compile_strategy(source, key="dip")      # RuleError if invalid
    run_backtest(bars, spec, {"trend": 150})         # like a built-in's key

No Django here; the README describes the language. This __init__ imports
nothing, so importing one module of the package runs no other.
"""
