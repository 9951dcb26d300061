"""Which process runs a backtest, and whether that process is still alive.

A run records its owner as ``host:boot id:pid:start time``. Any process on the
same host can then tell at once whether the owner still runs: the boot id changes
when the machine reboots, and the start time (clock ticks after boot, from
``/proc/<pid>/stat``) tells a restarted server apart from the old one even when it
got the same pid, as a container restarted in place does. A process on another
host (or in another container, whose host name differs) cannot be looked at; for
those runs the heartbeat rule in ``services.runs_mark_stale`` decides. Host names
are assumed to name one machine or container: two servers sharing a database must
not share a host name.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

HOST = socket.gethostname()
_PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


BOOT_ID = (_read(_PROC / "sys/kernel/random/boot_id") or "").strip()
HAS_PROC = _read(_PROC / "self/stat") is not None


def _start_ticks(pid: int) -> str | None:
    """Return when process ``pid`` started (ticks after boot); None if none runs."""
    stat = _read(_PROC / str(pid) / "stat")
    if stat is None:
        return None
    # "pid (command) state ppid ...": the command may hold spaces and ")", so
    # count fields after the last ")"; the start time is field 22 of the line.
    return stat.rsplit(")", 1)[1].split()[19]


def _describe(pid: int) -> str:
    start = (_start_ticks(pid) or "") if HAS_PROC else ""
    return f"{HOST}:{BOOT_ID}:{pid}:{start}"


# Keyed by pid, so a forked worker does not inherit its parent's identity.
_own = functools.cache(_describe)


def identity(pid: int | None = None) -> str:
    """Return the owner string of process ``pid`` (default: this process)."""
    return _own(os.getpid()) if pid is None else _describe(pid)


def is_alive(owner: str) -> bool | None:
    """Return whether the owner process still runs; None when it cannot be told."""
    try:
        host, boot, pid_text, start = owner.rsplit(":", 3)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != HOST or pid <= 0:
        return None
    if boot and BOOT_ID and boot != BOOT_ID:
        return False  # the machine has rebooted since
    if HAS_PROC and start:
        return _start_ticks(pid) == start
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the pid exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
