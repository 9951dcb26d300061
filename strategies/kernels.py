"""Array kernels behind the indicators: scratch memory, window statistics and
linear recursions (compiled loops, see fused). Kernels assume valid input
(float64, 1-D, n >= 1); the public functions in ``indicators`` check it.

Window statistics are built by doubling: level ``s`` holds a statistic of every
run of ``s`` values, two neighbouring runs of ``s`` make one of ``2s``, and a
window of ``n`` merges the binary digits of ``n`` (20 = 16 + 4). That is a few
passes of O(N) array work per window, and because runs are merged pairwise the
rounding stays at a few ulps: no running sum whose error grows along a long
series, and a constant window gives its value (and a variance of 0) exactly.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

from strategies.fused import recursion, recursion_pair

# -- scratch memory ------------------------------------------------------------
#
# A fresh NumPy array of a few hundred kB comes from newly mapped memory, and
# touching its pages costs more than the arithmetic on them (the allocator
# hands freed memory back to the system between backtests). Inside ``scratch()``
# the kernels carve temporaries out of one per-thread buffer that is reused from
# one call to the next, so the hot path touches memory that is already mapped.

_ALIGN = 64
# A thread keeps at most this much scratch between calls (a five-year hourly
# series needs about 15 MB); an unusually long series gets its memory back.
_KEEP_BYTES = 64 << 20
_local = threading.local()
_DTYPES: dict[object, np.dtype] = {}  # what ``empty`` was asked for -> its dtype


class _Arena:
    """A bump allocator over one reusable byte buffer."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, dtype=np.uint8)
        self.offset = 0
        self.live = 0  # bytes handed out and not reclaimed, across buffers
        self.peak = 0  # the most ``live`` reached in this session
        self.depth = 0

    def take(self, count: int, dtype: type) -> np.ndarray:
        # A backtest takes a dozen arrays: what stands between them is this
        # method's own time, so the dtype is looked up once per kind.
        kind = _DTYPES.get(dtype)
        if kind is None:
            kind = _DTYPES[dtype] = np.dtype(dtype)
        nbytes = count * kind.itemsize
        start = -(-self.offset // _ALIGN) * _ALIGN
        if start + nbytes > len(self.buffer):
            # Out of room: a new buffer for the rest of the session (views into
            # the old one stay valid); the next session sizes it from ``peak``.
            self.buffer = np.empty(max(nbytes, len(self.buffer)) + _ALIGN, np.uint8)
            start = self.start()
        self.offset = start + nbytes
        self.live += nbytes + _ALIGN
        if self.live > self.peak:
            self.peak = self.live
        return self.buffer[start : start + nbytes].view(kind)

    def start(self) -> int:
        """Return the first aligned offset of the buffer."""
        return -self.buffer.ctypes.data % _ALIGN

    def begin(self) -> None:
        if self.depth == 0:
            if self.peak > len(self.buffer):
                self.buffer = np.empty(self.peak + self.peak // 4, np.uint8)
            self.offset = self.start()
            self.live = self.peak = 0
        self.depth += 1

    def end(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.peak > _KEEP_BYTES:
            self.buffer = np.empty(0, dtype=np.uint8)
            self.peak = 0


@contextlib.contextmanager
def scratch() -> Iterator[None]:
    """Serve ``empty`` from a per-thread reusable buffer until the block exits.

    Arrays from ``empty`` inside the block are only valid until it exits: use it
    for work whose results are copied out (the engine), never for returned data.
    """
    arena = getattr(_local, "arena", None)
    if arena is None:
        arena = _local.arena = _Arena()
    arena.begin()
    _local.active = True
    try:
        yield
    finally:
        arena.end()
        _local.active = arena.depth > 0


@contextlib.contextmanager
def frame() -> Iterator[None]:
    """Reclaim the scratch taken inside the block when it exits.

    Only for code whose scratch arrays are all temporaries: nothing taken
    inside may be cached or returned, since the next block reuses the memory
    (which keeps the working set small enough to stay in the CPU caches).
    """
    arena = _local.arena if getattr(_local, "active", False) else None
    if arena is None:
        yield
        return
    buffer, offset, live = arena.buffer, arena.offset, arena.live
    try:
        yield
    finally:
        # A buffer that replaced the old one inside the block holds only the
        # block's arrays: start it afresh.
        arena.offset = offset if arena.buffer is buffer else arena.start()
        arena.live = live


def empty(count: int, dtype: type = np.float64) -> np.ndarray:
    """Return an uninitialised array, from the scratch buffer when one is active."""
    if getattr(_local, "active", False):
        return _local.arena.take(count, dtype)
    return np.empty(count, dtype)


# -- window statistics -----------------------------------------------------------


def _binary_spans(n: int) -> list[int]:
    """Return the powers of two that add up to ``n``, largest first."""
    return [1 << bit for bit in range(n.bit_length() - 1, -1, -1) if n >> bit & 1]


class Windows:
    """Rolling mean and variance of one series, sharing the doubling levels.

    ``mean(s)[i]`` and ``m2(s)[i]`` describe ``values[i : i + s]`` (its mean and
    sum of squared deviations) for a power of two ``s``. Runs are merged with
    Chan, Golub and LeVeque's pairwise update, which never subtracts large sums
    of squares, so the variance keeps full precision even on flat prices.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self._mean: dict[int, np.ndarray] = {1: values}
        self._m2: dict[int, np.ndarray] = {}

    def mean(self, span: int) -> np.ndarray:
        """Return the mean of every run of ``span`` values (a power of two)."""
        if span not in self._mean:
            half, step = self.mean(span // 2), span // 2
            size = len(half) - step
            out = empty(size)
            np.add(half[:size], half[step:], out=out)
            out *= 0.5
            self._mean[span] = out
        return self._mean[span]

    def m2(self, span: int) -> np.ndarray:
        """Return the sum of squared deviations of every run of ``span`` values."""
        if span not in self._m2:
            half, step = self.mean(span // 2), span // 2
            size = len(half) - step
            out = empty(size)
            np.subtract(half[step:], half[:size], out=out)
            out *= out
            out *= step / 2.0  # nA * nB / (nA + nB) with nA = nB = step
            if step > 1:
                m2 = self.m2(step)
                out += m2[:size]
                out += m2[step:]
            self._m2[span] = out
        return self._m2[span]

    def rolling_mean(self, n: int, out: np.ndarray) -> None:
        """Write the mean of each window of ``n`` values, by window start, to out."""
        spans = _binary_spans(n)
        size = len(out)
        # The first merge reads the largest run's means where they are (out
        # is its copy only when there is nothing to merge).
        mean = self.mean(spans[0])[:size]
        count = spans[0]
        if len(spans) == 1:
            out[:] = mean
            return
        step = empty(size)
        for span in spans[1:]:
            np.subtract(self.mean(span)[count : count + size], mean, out=step)
            step *= span / (count + span)
            np.add(mean, step, out=out)
            mean = out
            count += span

    def rolling_var(self, n: int, mean: np.ndarray, var: np.ndarray) -> None:
        """Write the mean and population variance of each window of ``n`` values."""
        spans = _binary_spans(n)
        size = len(mean)
        first = spans[0]
        # The first merge reads the largest run's figures where they are;
        # mean and var take copies only when there is nothing to merge.
        mean_from = self.mean(first)[:size]
        var_from = self.m2(first)[:size] if first > 1 else None
        if len(spans) == 1 or var_from is None:
            mean[:] = mean_from
            var[:] = 0.0 if var_from is None else var_from
            mean_from, var_from = mean, var
        count = first
        if len(spans) > 1:
            delta, step = empty(size), empty(size)
            for span in spans[1:]:
                total = count + span
                np.subtract(self.mean(span)[count : count + size], mean_from,
                             out=delta)  # fmt: skip
                np.multiply(delta, span / total, out=step)
                np.add(mean_from, step, out=mean)
                if span > 1:
                    np.add(var_from, self.m2(span)[count : count + size], out=var)
                elif var_from is not var:
                    var[:] = var_from
                mean_from, var_from = mean, var
                step *= delta
                step *= count  # delta^2 * nA * nB / (nA + nB)
                var += step
                count = total
        var *= 1.0 / n


def rolling_extreme(values: np.ndarray, n: int, op: np.ufunc, out: np.ndarray) -> None:
    """Write op (np.maximum or np.minimum) over each window of ``n`` values, by
    window start, to ``out`` (at most len(values) - n + 1 windows).

    Both are idempotent, so two overlapping runs of the largest power of two
    not above ``n`` cover a window: log2(n) passes, and exact.
    """
    level, span = values, 1
    while span * 2 <= n:
        size = len(level) - span
        nxt = empty(size)
        op(level[:size], level[span:], out=nxt)
        level, span = nxt, span * 2
    size = len(out)
    op(level[:size], level[n - span : n - span + size], out=out)


# -- linear recursion ----------------------------------------------------------


def linear_recursion(x: np.ndarray, decay: float, y0: float, out: np.ndarray) -> None:
    """Write out[0] = y0, out[t] = (1-decay)*x[t] + decay*out[t-1] for t >= 1.

    A compiled loop (fused.recursion): the plain loop's operations in its
    order, so the plain loop's numbers to the bit, and faster than any
    closed form in NumPy calls (each step is one multiply-add).
    """
    recursion(x, decay, y0, out)


def linear_recursion_pair(
    x: np.ndarray,
    y: np.ndarray,
    decay: float,
    x0: float,
    y0: float,
    out_x: np.ndarray,
    out_y: np.ndarray,
) -> None:
    """Run linear_recursion on two series of one length with one decay, bit
    for bit as two calls would, in the time of one (fused.recursion_pair)."""
    recursion_pair(x, y, decay, x0, y0, out_x, out_y)
