"""Hostile input on the websocket: every malformed message gets an ``error``
naming its field, on a socket that stays open, and nothing reaches the log as a
traceback or an ERROR.

The messages are generated: every field of a run request x a list of values no
field accepts (huge and deep JSON, numbers in other scripts, "1_0", NaN and
Infinity, extreme dates, wrong types), plus raw texts a parser must survive.
The counts are printed (``-s``).
"""

from __future__ import annotations

import json
import logging

import pytest

from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import (  # noqa: F401 - fixture
    _drain_runs,
    collect_until_end,
    connect,
    receive,
)
from backtester.tests.hostile_families import (
    BAD_VALUES,
    FIELDS,
    NESTED,
    OVERSIZE,
    RAW,
    VALID,
)
from backtester.tests.hostile_families import run_messages as generated

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_hundreds_of_malformed_messages_each_get_an_error(caplog):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_coins)(["AAA"], bars=300)
    caplog.set_level(logging.DEBUG)
    messages = generated()
    communicator = await connect()
    errors = closes = 0
    for text, field, label in messages:
        await communicator.send_to(text_data=text)
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            closes += 1
            pytest.fail(f"{label}: the socket closed ({output})")
        reply = json.loads(output["text"])
        assert reply["type"] == "error", (label, reply)
        errors += 1
        if field is not None:
            assert reply.get("field") == field, (label, reply)
        # The message names the problem, never a traceback or an exception.
        assert "Traceback" not in reply["message"], label
        assert "Error:" not in reply["message"], (label, reply["message"])
        assert len(reply["message"]) < 600, label
    size_limited = 0
    for text in OVERSIZE:
        await communicator.send_to(text_data=text)
        reply = await receive(communicator)
        assert reply["type"] == "error" and "too large" in reply["message"]
        assert "bytes" in reply["message"]
        size_limited += 1
    # Just under the limit in bytes, with multi-byte characters: not refused
    # for its size (it is refused for its unknown field instead).
    pad = "\u00e9" * ((64 * 1024 - 40) // 2)
    text = json.dumps({"type": "run", "pad": pad}, ensure_ascii=False)
    assert len(text.encode()) <= 64 * 1024
    await communicator.send_to(text_data=text)
    reply = await receive(communicator)
    assert reply["type"] == "error" and reply.get("field") == "pad"
    # After all that, the same socket still runs a backtest.
    await communicator.send_json_to(VALID)
    assert (await receive(communicator))["type"] == "start"
    assert (await collect_until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()
    bad_logs = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad_logs == [], [r.getMessage() for r in bad_logs]
    print(
        f"\nhostile input: {len(messages) + len(OVERSIZE) + 1} malformed messages "
        f"({len(FIELDS) + len(NESTED)} fields x {len(BAD_VALUES)} values, "
        f"{len(RAW)} raw texts, {len(OVERSIZE)} over the byte limit, 1 just "
        f"under it), {errors + size_limited + 1} errors, {closes} socket closes, "
        f"{len(bad_logs)} tracebacks or ERROR logs"
    )
