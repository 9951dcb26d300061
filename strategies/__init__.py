"""Pure computation: indicators, strategies, the vectorized engine and metrics.

Nothing here imports Django, so the engine can be tested and benchmarked alone.
"""
