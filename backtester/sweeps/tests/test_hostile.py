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
from backtester.tests.hostile_families import SWEEP, WALK
from backtester.tests.hostile_families import job_messages as cases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


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
