"""Start and stop ``celery -A backtester worker`` processes for tests and benches."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[3]


def database_url(settings_dict: dict) -> str:
    """Return a DATABASE_URL for a connection's settings (e.g. the test database)."""
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class Workers:
    """Worker processes, each in its own process group (so a SIGKILL takes its
    pool children too, as when a machine or container dies). ``close()`` kills
    whatever is left; call it in a ``finally``."""

    def __init__(self, env: dict[str, str], launcher: list[str] | None = None) -> None:
        self.env = {**os.environ, **env}
        # What starts Celery: ``-m celery``, or a script that patches first.
        self.launcher = launcher or ["-m", "celery"]
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="btlab-workers-"))

    def start(self, name: str, concurrency: int = 1) -> str:
        """Start a worker named ``name@host``; return its node name."""
        log = self._dir / f"{name}.log"
        node = f"{name}@btlab"
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                *self.launcher,
                "-A",
                "backtester",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(concurrency),
                "-n",
                node,
                "--loglevel=info",
                "--without-gossip",
                "--without-mingle",
            ],  # fmt: skip
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.logs[name] = log
        return node

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until every started worker has logged that it is ready."""
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            while b" ready." not in self.logs[name].read_bytes():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited:\n{self.log(name)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} not ready:\n{self.log(name)}")
                time.sleep(0.05)

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-4000:]

    def kill(self, name: str) -> None:
        """SIGKILL a worker and its pool processes at once (no clean shutdown)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        """Stop every worker still running: a warm shutdown, then SIGKILL."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.processes.clear()
