"""Array kernels behind the indicators: scratch memory, window statistics and
linear recursions. Kernels assume valid input (float64, 1-D, n >= 1); the
public functions in ``indicators`` check it.

Window statistics are built by doubling: level ``s`` holds a statistic of every
run of ``s`` values, two neighbouring runs of ``s`` make one of ``2s``, and a
window of ``n`` merges the binary digits of ``n`` (20 = 16 + 4). That is a few
passes of O(N) array work per window, and because runs are merged pairwise the
rounding stays at a few ulps: no running sum whose error grows along a long
series, and a constant window gives its value (and a variance of 0) exactly.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

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

# Largest exponent k*ln(1/decay) allowed inside one chunk of the closed form:
# decay**-k stays below 1e200, far from overflow even for values near 1e100.
_MAX_GROWTH_LOG = 460.0
_MAX_CHUNK = 16_384
# Up to this many chunks a Python loop over them beats the padded 2-D layout.
_LOOP_CHUNKS = 24


@lru_cache(maxsize=256)
def _powers(decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return decay**-k, (1-decay)*decay**k and decay**(k+1) over one chunk."""
    size = int(min(_MAX_CHUNK, max(1.0, _MAX_GROWTH_LOG / -math.log(decay))))
    k = np.arange(size, dtype=np.float64)
    shrink = np.power(decay, k)
    return np.power(decay, -k), (1.0 - decay) * shrink, decay * shrink


def linear_recursion(x: np.ndarray, decay: float, y0: float, out: np.ndarray) -> None:
    """Write out[0] = y0, out[t] = (1-decay)*x[t] + decay*out[t-1] for t >= 1.

    Closed form per chunk of k = 0..K-1 values after a carried value c:
    y[k] = (1-decay) * decay^k * (cumsum(decay^-j * x[j])[k] + c*decay/(1-decay)).
    A chunk is as long as decay^-k stays far from overflow (hundreds to
    thousands of bars), so only a short loop over chunks remains. The weighted
    sum loses no more than the loop does: it agrees with it to ~1e-15 relative.
    """
    count = len(x) - 1
    out[0] = y0
    if count <= 0:
        return
    if decay == 0.0:
        out[1:] = x[1:]
        return
    chunks, size = _chunking(count, decay)
    if chunks <= _LOOP_CHUNKS:
        _recursion_in_place(x, decay, y0, out, size)
    else:
        _recursion_in_rows(x, decay, y0, out, chunks, size)


def _chunking(count: int, decay: float) -> tuple[int, int]:
    """Return how many chunks ``count`` values take, and their size."""
    chunks = -(-count // len(_powers(decay)[0]))
    return chunks, -(-count // chunks)  # equal chunks, none longer than the powers


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
    for bit as two calls would.

    The running sums are the slow part: each addition waits for the one
    before. Laid out as the real and imaginary parts of one complex series,
    the two running sums go side by side in the time of one, each by the same
    additions in the same order (complex numbers add part by part). The
    weighting stays on each part's own view, as real multiplications.
    """
    count = len(x) - 1
    chunks, size = _chunking(count, decay) if count > 0 and decay else (0, 0)
    if not 0 < chunks <= _LOOP_CHUNKS:
        linear_recursion(x, decay, x0, out_x)
        linear_recursion(y, decay, y0, out_y)
        return
    grow, gain, _ = _powers(decay)
    carry_weight = decay / (1.0 - decay)
    full, rest = divmod(count, size)
    both = empty(count, np.complex128)
    rows = both[: full * size].reshape(full, size)
    tail = both[full * size :]
    for part, series in ((rows.real, x), (rows.imag, y)):
        np.multiply(series[1 : 1 + full * size].reshape(full, size), grow[:size],
                    out=part)  # fmt: skip
    np.multiply(x[1 + full * size :], grow[:rest], out=tail.real)
    np.multiply(y[1 + full * size :], grow[:rest], out=tail.imag)
    value_x, value_y = x0, y0
    for part in [*rows, tail] if rest else rows:
        part[0] += complex(value_x * carry_weight, value_y * carry_weight)
        part.cumsum(out=part)
        last, weight = part[-1], gain[len(part) - 1]
        value_x, value_y = float(last.real * weight), float(last.imag * weight)
    for part in (rows.real, rows.imag):
        part *= gain[:size]
    for part in (tail.real, tail.imag):
        part *= gain[:rest]
    out_x[0], out_y[0] = x0, y0
    out_x[1:] = both.real
    out_y[1:] = both.imag


def _recursion_in_place(
    x: np.ndarray, decay: float, y0: float, out: np.ndarray, size: int
) -> None:
    """Run linear_recursion chunk by chunk in ``out``, the carried value folded
    into each chunk's first term (few chunks: a slow average).

    The weighting before and after the running sums is one call over all
    chunks; only the running sum and the carried value go chunk by chunk.
    """
    grow, gain, _ = _powers(decay)
    carry_weight = decay / (1.0 - decay)
    count = len(x) - 1
    full, rest = divmod(count, size)
    rows = out[1 : 1 + full * size].reshape(full, size)
    np.multiply(x[1 : 1 + full * size].reshape(full, size), grow[:size], out=rows)
    tail = out[1 + full * size :]
    np.multiply(x[1 + full * size :], grow[:rest], out=tail)
    value = y0
    for part in [*rows, tail] if rest else rows:
        part[0] += value * carry_weight
        part.cumsum(out=part)
        # The last weighted value, as the multiplication below gives it.
        value = float(part[-1] * gain[len(part) - 1])
    rows *= gain[:size]
    tail *= gain[:rest]


def _recursion_in_rows(
    x: np.ndarray, decay: float, y0: float, out: np.ndarray, chunks: int, size: int
) -> None:
    """Run linear_recursion with one chunk per row of a zero-padded 2-D buffer
    and a scalar loop to carry the value from row to row (many short chunks: a
    fast average, where a loop of NumPy calls per chunk would cost more)."""
    grow, gain, carry_gain = _powers(decay)
    count = len(x) - 1
    full, rest = divmod(count, size)
    rows = empty(chunks * size).reshape(chunks, size)
    if full:
        np.multiply(x[1 : 1 + full * size].reshape(full, size), grow[:size],
                    out=rows[:full])  # fmt: skip
    if rest:
        np.multiply(x[1 + full * size :], grow[:rest], out=rows[full, :rest])
        rows[full, rest:] = 0.0
    np.cumsum(rows, axis=1, out=rows)
    rows *= gain[:size]
    carry = np.empty(chunks)
    value, chunk_decay = y0, carry_gain[size - 1]
    for index, end in enumerate(rows[:, -1].tolist()):
        carry[index] = value
        value = end + chunk_decay * value
    rows += np.multiply.outer(carry, carry_gain[:size])
    out[1:] = rows.reshape(-1)[:count]
