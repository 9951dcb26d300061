"""Every compiled (Numba) kernel of the engine, loaded at once.

A process that serves runs loads them when it starts, so its first run does not
pay for reading Numba's on-disk cache (a fraction of a second each, seconds
under load) and a fresh checkout compiles them once, outside any run.
"""

from __future__ import annotations

from strategies import fused, paths, portfolio_pass


def kernels_load() -> None:
    """Compile the engine's kernels, or load them from Numba's cache."""
    fused.compile_kernels()
    paths.compile_kernels()
    portfolio_pass.compile_kernels()
