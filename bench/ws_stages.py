"""Serve the app with daphne, timing each stage of a websocket run (bench only).

    python bench/ws_stages.py OUT.json -b 127.0.0.1 -p PORT backtester.asgi:application

Wraps, in this process only, the functions a run passes through (request
checks, admission, price loads, the engine, building result rows, storing,
publishing to the channel layer, the consumer's forwarding and JSON encoding)
with timers, and writes what they measured to OUT.json after every run's last
event. Production code is not changed: the timers are module attributes
replaced here before daphne starts. ``run_ws.py --stages`` starts it and prints
the report (``report``). A watcher on the event loop records its stalls (a 1 ms
sleep that took over 5 ms: the loop thread was waiting for the GIL or a CPU).
With BTLAB_PROFILE=1 every thread also runs under cProfile, merged into
OUT.json.prof (``python -m pstats OUT.json.prof``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (stage, thread, began, ended) since the server started; runs as (received,
# start sent, first result sent, last event sent).
SPANS: list[tuple[str, str, float, float]] = []
RUNS: list[dict] = []
_lock = threading.Lock()


def _record(stage: str, began: float) -> None:
    ended = time.perf_counter()
    with _lock:
        SPANS.append((stage, threading.current_thread().name, began, ended))


def _timed(stage: str, fn):
    """Return ``fn`` recording each call's span under ``stage``."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                _record(stage, began)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(stage, began)

    return wrapper


def _patch(module, name: str, stage: str) -> None:
    setattr(module, name, _timed(stage, getattr(module, name)))


def install(out: Path) -> None:
    """Replace the stages' functions with timed ones; dump to ``out`` per run."""
    import backtester.asgi  # noqa: F401  (sets Django up)
    from backtester.execution import driving, pool
    from backtester.runs import compute, consumers, selectors, services

    for name, stage in (
        ("run_spec", "request: validate"),
        ("run_coins", "request: coins"),
        ("run_admit", "request: admission"),
        ("run_cached", "request: cache lookup"),
        ("run_create", "request: create run"),
        ("run_start", "request: start"),
        ("results_by_seq", "consumer: read stored results"),
    ):
        _patch(consumers, name, stage)
    from backtester.runs import replies

    _patch(replies, "results_by_seq", "consumer: read stored results")
    _patch(pool, "bars_load", "load bars")
    _patch(compute, "run_many", "engine (run_many)")
    _patch(compute, "result_row", "build result rows")
    _patch(services, "results_save", "store rows")
    _patch(services, "run_save", "save run record")
    _patch(selectors, "result_data", "stored row to data")
    _patch(driving.registry, "call", "registry call (compute/summarize)")

    original_publisher = consumers.publisher

    def publisher(layer, group, loop, deliver=None):
        return _timed(
            "publish (worker thread, waits)",
            original_publisher(layer, group, loop, deliver=deliver),
        )

    consumers.publisher = publisher
    Consumer = consumers.BacktestConsumer
    Consumer.run_results = _timed("consumer: forward results", Consumer.run_results)
    encode = Consumer.encode_json.__func__

    async def encode_json(cls, content):
        began = time.perf_counter()
        try:
            return await encode(cls, content)
        finally:
            _record("consumer: JSON encode", began)

    Consumer.encode_json = classmethod(encode_json)
    original_send = Consumer.send_json
    original_send_text = Consumer.send_text
    original_receive = Consumer.receive

    async def receive(self, text_data=None, bytes_data=None):
        if text_data and '"run"' in text_data:
            with _lock:
                RUNS.append({"received": time.perf_counter()})
        return await original_receive(self, text_data, bytes_data)

    async def send_json(self, content, close=False):
        began = time.perf_counter()
        try:
            return await original_send(self, content, close)
        finally:
            _record("consumer: send_json", began)

    async def send_text(self, text, close=False):
        # Every event goes out here (send_json encodes, then sends the text).
        began = time.perf_counter()
        try:
            return await original_send_text(self, text, close)
        finally:
            _record("consumer: send_text", began)
            now = time.perf_counter()
            found = re.search(r'"type":\s*"(\w+)"', text[:60])
            kind = found.group(1) if found else None
            with _lock:
                run = RUNS[-1] if RUNS else None
            if run is not None and "ended" not in run:
                if kind == "start":
                    run["start"] = now
                elif kind == "result":
                    run.setdefault("first_result", now)
                    run["results"] = run.get("results", 0) + 1
                elif kind in ("complete", "cancelled", "error"):
                    run["ended"] = now
                    _dump(out)

    Consumer.receive = receive
    Consumer.send_json = send_json
    Consumer.send_text = send_text
    from channels.layers import get_channel_layer

    layer_class = type(get_channel_layer())
    layer_class.group_send = _timed("layer: group_send (loop)", layer_class.group_send)
    layer_class.receive = _timed("layer: receive (loop, waits)", layer_class.receive)
    original_connect = Consumer.connect

    async def connect(self):
        global _lag_task
        if _lag_task is None:
            _lag_task = asyncio.ensure_future(_watch_loop())
        return await original_connect(self)

    Consumer.connect = connect


_lag_task = None


async def _watch_loop() -> None:
    """Record the event loop's stalls: a 1 ms sleep that took over 5 ms."""
    while True:
        began = time.perf_counter()
        await asyncio.sleep(0.001)
        if time.perf_counter() - began > 0.005:
            _record("loop stalled (>5 ms)", began)


def _dump(out: Path) -> None:
    with _lock:
        payload = {"spans": list(SPANS), "runs": list(RUNS)}
    out.write_text(json.dumps(payload))
    if _profiles:
        import pstats

        stats = None
        for profile in list(_profiles):
            profile.create_stats()
            if profile.stats:
                stats = pstats.Stats(profile) if stats is None else stats.add(profile)
        if stats is not None:
            stats.dump_stats(str(out) + ".prof")


_profiles: list = []


def _profile_threads() -> None:
    """Profile every thread (cProfile per thread, merged when dumped)."""
    import cProfile

    def start(*_args) -> None:
        profile = cProfile.Profile()
        _profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    start()


def report(path: Path, labels: list[str]) -> None:
    """Print each labelled run's timeline and the time its stages took."""
    data = json.loads(path.read_text())
    spans, runs = data["spans"], data["runs"]
    for label, run in zip(labels, runs, strict=False):
        if not label or "ended" not in run:
            continue
        t0, end = run["received"], run["ended"]
        print(f"  {label}: (ms from the run message)")
        marks = [
            ("start sent", run.get("start")),
            ("first result sent", run.get("first_result")),
            ("last event sent", end),
        ]
        print("    " + "   ".join(f"{k} {(v - t0) * 1000:7.1f}" for k, v in marks if v))
        totals: dict[str, list] = {}
        firsts: dict[str, float] = {}
        lasts: dict[str, float] = {}
        for stage, _thread, began, ended in spans:
            if t0 <= began <= end:
                entry = totals.setdefault(stage, [0, 0.0])
                entry[0] += 1
                entry[1] += ended - began
                firsts.setdefault(stage, ended - t0)
                lasts[stage] = max(lasts.get(stage, 0.0), ended - t0)
        for stage, (count, total) in sorted(totals.items(), key=lambda i: -i[1][1]):
            print(
                f"    {stage:<36} {count:5d} calls {total * 1000:8.1f} ms"
                f"   first ends at {firsts[stage] * 1000:7.1f}"
                f", last at {lasts[stage] * 1000:7.1f} ms"
            )


def main() -> None:
    out = Path(sys.argv.pop(1))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtester.settings")
    sys.path.insert(0, str(ROOT))
    install(out)
    if os.environ.get("BTLAB_PROFILE"):
        _profile_threads()
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
