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

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

VALID = {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
HUGE = 10**400  # 401 digits: float() of it raises OverflowError


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# Values that no field of a run request accepts.
BAD_VALUES = [
    HUGE, -HUGE, 1e308, -1e308, -1, 10**20, 3.5e12,
    "1_0", "\u0661\u0660", "\uff11\uff10", "\u0967", "1e999", "-1e999",
    "NaN", "nan", "Infinity", "-inf", "0x10", "1,5", " 1 0 ",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "2024-13-45",
    "x" * 5000, "\u0000", "<script>alert(1)</script>", "=CMD()", "\U0001f600",
    True, False, [], [None], [[]], {"a": 1}, nested(30), nested(31, {"a": 1}),
]  # fmt: skip
# Every field a run request has, and the field an error must name.
FIELDS = {
    "type": "type",
    "strategy": "strategy",
    "strategies": "strategies",
    "params": "params",
    "symbols": "symbols",
    "start": "start",
    "end": "end",
    "interval": "interval",
    "fee": "fee",
    "slippage_bps": "slippage_bps",
    "stop_loss_pct": "stop_loss_pct",
    "take_profit_pct": "take_profit_pct",
    "trailing_stop_pct": "trailing_stop_pct",
    "direction": "direction",
    "position_size": "position_size",
}
# A parameter of the strategy, and an item of a strategies list.
NESTED = {
    "params.fast": lambda v: {**VALID, "params": {"fast": v}},
    "strategies[0].params.slow": lambda v: {
        **{k: v2 for k, v2 in VALID.items() if k != "strategy"},
        "strategies": [{"strategy": "sma_crossover", "params": {"slow": v}}],
    },
}
NESTED_FIELD = {
    "params.fast": "params.fast",
    "strategies[0].params.slow": "params.slow",
}
# Texts that are not a run request at all, and the error's field (or None).
RAW = [
    ("[" * 1000 + "]" * 1000, None),
    ('{"a":' * 1000 + "1" + "}" * 1000, None),
    ('{"type": "run", "params": ' + '{"a": ' * 1000 + "1" + "}" * 1001, None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": NaN}', None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": Infinity}', None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": -Infinity}', None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": ' + "9" * 401 + "}",
     "fee"),
    ('{"type": "run", "strategy": "sma_crossover", "fee": ' + "9" * 5000 + "}",
     None),
    ('{"type": "run", "strategy": "sma_crossover", "fee": 1e400}', "fee"),
    ('{"type": "run"', None),
    (" ", None),
    ("null", None),
    ("42", None),
    ('"run"', None),
    ("{'type': 'run'}", None),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": ""}', "symbols"),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": []}', "symbols"),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": ",,"}', "symbols"),
    ('{"type": "cancel"}', None),
    ('{"type": "resend", "run_id": 1, "seqs": [1]}', "run_id"),
    ('{"type": "resend", "run_id": true, "seqs": [1]}', "run_id"),
]  # fmt: skip
# Over the 64 KB limit in UTF-8 bytes though not in characters: 40,000
# two-byte characters are 80,000 bytes.
OVERSIZE = [
    json.dumps({"type": "run", "pad": "\u00e9" * 40_000}, ensure_ascii=False),
    json.dumps({"type": "run", "pad": "\U0001f600" * 17_000}, ensure_ascii=False),
    json.dumps({"type": "run", "pad": "x" * 70_000}),
]


def generated() -> list[tuple[str, str | None, str]]:
    """Return (text, the field the error must name or None, label)."""
    out = []
    for name, field in FIELDS.items():
        for i, value in enumerate(BAD_VALUES):
            if name == "params" and value == {"a": 1}:
                value = {"a": 1, "fast": 5}  # an object, but with an unknown name
                field = "params.a"
            # "strategies" replaces "strategy" (giving both is its own error).
            base = {
                k: v
                for k, v in VALID.items()
                if (k, name) != ("strategy", "strategies")
            }
            out.append((json.dumps({**base, name: value}), field, f"{name}[{i}]"))
            field = FIELDS[name]
    for name, build in NESTED.items():
        for i, value in enumerate(BAD_VALUES):
            field = NESTED_FIELD[name]
            if value is BAD_VALUES[-1] or value is BAD_VALUES[-2]:
                # Too deep: named by its path through objects, to the list.
                field = name.split("[")[0] if "[" in name else name
            out.append((json.dumps(build(value)), field, f"{name}[{i}]"))
    for i, (text, field) in enumerate(RAW):
        out.append((text, field, f"raw[{i}]"))
    return out


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
