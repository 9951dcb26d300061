"""A server process's threads share a capped number of malloc arenas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backtester.arenas import malloc_arenas_limit

ROOT = Path(__file__).resolve().parents[2]

# Four threads each allocate a block glibc serves from an arena (above
# pymalloc's 512 bytes, below the 128 kB mmap threshold) and hold it until all
# have, then glibc's malloc_stats() prints one "Arena N:" section per arena.
PROBE = """
import ctypes, ctypes.util, sys, threading
from backtester.arenas import malloc_arenas_limit
limit = int(sys.argv[1])
if limit:
    assert malloc_arenas_limit(limit)
barrier = threading.Barrier(5)
def hold():
    block = bytearray(64_000)
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=hold) for _ in range(4)]
for t in threads:
    t.start()
barrier.wait()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
barrier.wait()
for t in threads:
    t.join()
"""


def arenas_used(limit: int) -> int:
    """Return the arenas a fresh process with four allocating threads uses."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(limit)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stderr.count("Arena ")


def test_the_threads_of_a_capped_process_share_its_arenas():
    default = arenas_used(0)
    if default == 0:
        pytest.skip("not glibc's allocator (no malloc_stats)")
    assert default >= 3  # glibc's default: an arena per thread here
    assert arenas_used(2) == 2


def test_zero_leaves_the_default():
    assert malloc_arenas_limit(0) is False
