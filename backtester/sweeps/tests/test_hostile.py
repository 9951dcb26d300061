"""Hostile input on every message type of ``ws/backtests/``: each malformed
``run``, ``sweep``, ``walk_forward``, ``portfolio_sweep``, ``attach``, ``cancel``
and ``resend`` gets
an ``error`` (naming its field where it has one) on a socket that stays open,
echoes no long value back, and leaves no traceback or ERROR in the log.

The families are those a hostile run found crashing the consumer: steps too
small for decimal division, bounds past any decimal context, integers too
large for a float, unhashable and falsy values where a name is expected, ids
too long for a group name, and digits Python reads but a request does not.
"""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import sync_to_async

from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import connect, receive
from backtester.sweeps.tests.test_consumer import _drain_sweeps  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

HUGE = 10**400
LONG = "x" * 5000
SWEEP = {
    "type": "sweep",
    "strategy": "sma_crossover",
    "symbols": ["AAA"],
    "grid": {"fast": [5, 10], "slow": [30]},
}
WALK = {**SWEEP, "type": "walk_forward", "train_bars": 100, "test_bars": 50}
PORTFOLIO_SWEEP = {**SWEEP, "type": "portfolio_sweep", "params": {"slow": 30},
                   "grid": {"max_positions": [1, 2], "fast": [5, 10]}}  # fmt: skip
# Values that no number, size or name accepts.
NUMBERS = [HUGE, -HUGE, "1e999999999", "-1e999999999", "1_0", "\uff11\uff10",
           LONG, {"a": 1}, [1], True]  # fmt: skip
# Grid axes that no parameter takes: steps decimal division cannot do, bounds
# past a decimal context, Python-only digits.
AXES = [
    {"start": 5, "stop": 50, "step": "1e-30"},
    {"start": 5, "stop": 50, "step": 1e-300},
    {"start": 5, "stop": 50, "step": 5e-324},
    "5:50:1e-30",
    {"start": 5, "stop": "1e999999999", "step": 1},
    {"start": "-1e999999999", "stop": "1e999999999", "step": 1},
    "5:1e999999999:1",
    {"start": 5, "stop": HUGE, "step": 1},
    {"start": "1_0", "stop": 20, "step": 5},
    "\uff11\uff10",
    "1_0,20",
    [HUGE],
    [LONG],
    LONG,
]
IDS = [HUGE, -HUGE, 10**30, -1, 0, "1", {"a": 1}, [1], True, 1.5, LONG]


def cases() -> list[tuple[dict, str | None, str]]:
    """Return (message, the field its error must name or None, label)."""
    out = []
    families = (("sweep", SWEEP), ("walk_forward", WALK))
    for kind, base in (*families, ("portfolio_sweep", PORTFOLIO_SWEEP)):
        for i, axis in enumerate(AXES):
            grid = {"fast": axis, "slow": [30]}
            out.append(({**base, "grid": grid}, "grid.fast", f"{kind}.grid[{i}]"))
            risk = {"fast": [5, 10], "stop_loss_pct": axis}
            out.append(
                ({**base, "grid": risk}, "grid.stop_loss_pct", f"{kind}.risk[{i}]")
            )
        for i, value in enumerate(NUMBERS):
            for name in ("stop_loss_pct", "fee"):
                out.append(({**base, name: value}, name, f"{kind}.{name}[{i}]"))
            out.append(
                (
                    {**base, "params": {"stop_loss_pct": value}},
                    "params.stop_loss_pct",
                    f"{kind}.params[{i}]",
                )
            )
        for i, value in enumerate([{"a": 1}, False, {}, [], 0, "", LONG, HUGE]):
            out.append(({**base, "objective": value}, "objective", f"{kind}.obj[{i}]"))
        out.append(({**base, LONG: 1}, None, f"{kind}.unknown"))
        out.append(({**base, "strategy": LONG}, "strategy", f"{kind}.strategy"))
    for i, value in enumerate(NUMBERS + [0, -5, 2.5]):
        for name in ("train_bars", "test_bars", "folds"):
            out.append(({**WALK, name: value}, name, f"walk.{name}[{i}]"))
    for i, axis in enumerate([*AXES, [0, 1], [101], [1.5], [True], [1, 1]]):
        grid = {"max_positions": axis, "fast": [5]}
        out.append(
            ({**PORTFOLIO_SWEEP, "grid": grid}, "grid.max_positions",
             f"portfolio_sweep.max_positions[{i}]")
        )  # fmt: skip
    for i, value in enumerate(IDS):
        for name in ("run_id", "sweep_id", "portfolio_id", "portfolio_sweep_id"):
            message = {"type": "attach", name: value}
            out.append((message, name, f"attach.{name}[{i}]"))
        out.append(({"type": "resend", "run_id": value, "seqs": [1]}, "run_id",
                    f"resend.run_id[{i}]"))  # fmt: skip
        out.append(({"type": "cancel", "run_id": value}, None, f"cancel[{i}]"))
    for i, value in enumerate(NUMBERS):
        out.append(
            ({"type": "run", "strategy": "sma_crossover", "stop_loss_pct": value},
             "stop_loss_pct", f"run.stop_loss_pct[{i}]")
        )  # fmt: skip
    return out


async def test_every_message_type_answers_malformed_input_with_an_error(caplog):
    await sync_to_async(make_coins)(["AAA"], bars=300)
    caplog.set_level(logging.DEBUG)
    messages = cases()
    communicator = await connect()
    for message, field, label in messages:
        await communicator.send_to(text_data=json.dumps(message))
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            pytest.fail(f"{label}: the socket closed ({output})")
        reply = json.loads(output["text"])
        if reply["type"] == "walk_forward_start":  # found while computing
            reply = await receive(communicator, 20)
        assert reply["type"] == "error", (label, reply)
        if field is not None:
            assert reply.get("field") == field, (label, reply)
        text = reply["message"]
        assert "Traceback" not in text and "Error:" not in text, (label, text)
        # A long value is never echoed back whole.
        for long in ("x" * 41, "0" * 41):
            assert long not in text and long not in (reply.get("field") or ""), label
    # The same socket still starts a sweep.
    await communicator.send_json_to(SWEEP)
    assert (await receive(communicator))["type"] == "sweep_start"
    await communicator.send_json_to({"type": "cancel"})
    assert (await receive(communicator))["type"] == "cancelled"
    await communicator.disconnect()
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    print(f"\nhostile input on every message type: {len(messages)} messages")


async def test_an_absurd_test_window_is_blamed_on_test_bars():
    await sync_to_async(make_coins)(["AAA"], bars=300)
    communicator = await connect()
    await communicator.send_json_to({**WALK, "test_bars": 1000})
    assert (await receive(communicator))["type"] == "walk_forward_start"
    reply = await receive(communicator, 20)
    assert reply["type"] == "error" and reply["field"] == "test_bars", reply
    await communicator.disconnect()
