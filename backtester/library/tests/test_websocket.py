"""The websocket: check_strategy, a saved strategy run, isolation, hostile text."""

from __future__ import annotations

import io
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connections

from backtester.asgi import application
from backtester.library.models import Strategy
from backtester.library.services import strategy_save
from backtester.library.tests.reference import crossover_source, crossover_trades
from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.tests.test_consumer import drain_runs
from strategies.tests.test_rules_fuzz import sources

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture(autouse=True)
def _memory_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }


@pytest.fixture(autouse=True)
async def _drain():
    yield

    def drain_and_close() -> None:
        drain_runs()
        connections.close_all()

    await sync_to_async(drain_and_close)()


async def connect(user=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/backtests/", headers=HEADERS)
    if user is not None:
        communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def ask(communicator, message) -> dict:
    if isinstance(message, str):
        await communicator.send_to(text_data=message)
    else:
        await communicator.send_json_to(message)
    return await communicator.receive_json_from(timeout=10)


async def test_check_strategy_reports_line_and_column_and_params():
    communicator = await connect()
    reply = await ask(
        communicator,
        {"type": "check_strategy", "source": "param k: float = 2 in 1..3\n"
         "long entry: close < bb_lower(close, 20, k)\n"
         "long exit: close > smaa(close, 20)\n"},
    )  # fmt: skip
    assert reply["type"] == "strategy_check" and reply["ok"] is False
    assert [(e["line"], e["col"]) for e in reply["errors"]] == [(3, 20)]
    assert "did you mean 'sma'" in reply["errors"][0]["message"]
    reply = await ask(
        communicator, {"type": "check_strategy", "source": crossover_source(5, 20)}
    )
    assert reply == {
        "type": "strategy_check", "ok": True, "errors": [], "params": [],
        "directions": ["long"],
    }  # fmt: skip
    await communicator.disconnect()


async def test_a_saved_strategy_runs_and_anothers_private_one_is_unknown():
    await sync_to_async(make_coins)(["AAA", "BBB"], bars=300)
    model = get_user_model()
    alice = await sync_to_async(model.objects.create_user)("alice", password="x1-pw")
    bob = await sync_to_async(model.objects.create_user)("bob", password="x2-pw")
    await sync_to_async(strategy_save)(
        key="mine", source=crossover_source(5, 20), user=alice
    )
    communicator = await connect(alice)
    start = await ask(communicator, {"type": "run", "strategy": "mine"})
    assert start["type"] == "start", start
    results = []
    while True:
        message = await communicator.receive_json_from(timeout=20)
        if message["type"] == "result":
            results.append(message["data"])
        if message["type"] in ("complete", "error"):
            break
    assert message["type"] == "complete"
    for data in results:
        close = random_walk(300, seed={"AAA": 1, "BBB": 2}[data["symbol"]]).close
        assert data["metrics"]["num_trades"] == crossover_trades(close.tolist(), 5, 20)
    await communicator.disconnect()
    other = await connect(bob)
    for message in (
        {"type": "run", "strategy": "mine"},
        {"type": "sweep", "strategy": "mine", "grid": {"x": [1]}},
        {"type": "walk_forward", "strategy": "mine", "grid": {"x": [1]},
         "train_bars": 10, "test_bars": 10},
    ):  # fmt: skip
        reply = await ask(other, message)
        assert (
            reply["type"] == "error" and "unknown strategy 'mine'" in reply["message"]
        )
    # The socket is still open and answers.
    assert (await ask(other, {"type": "check_strategy", "source": "x"}))["type"] == (
        "strategy_check"
    )
    await other.disconnect()


async def test_hostile_sources_are_refused_through_the_socket(tmp_path):
    canary = tmp_path / "canary"
    hostile = [s for s in sources(str(canary)) if isinstance(s, str)]
    hostile += [
        "long when: close > 1\n" + "#" * (1 << 20),  # 1 MB
        "long when: close > 1\x00",
        "long when: __import__('os').system('touch " + str(canary) + "') > 0",
    ]
    assert len(hostile) >= 300
    communicator = await connect()
    refused = 0
    for source in hostile:
        reply = await ask(communicator, {"type": "check_strategy", "source": source})
        assert reply["type"] in ("strategy_check", "error"), reply
        assert reply.get("ok") is not True
        refused += 1
    # Not text, or a frame that is not JSON at all (invalid UTF-8 never
    # reaches a text frame; bytes are refused).
    for message in ({"type": "check_strategy", "source": 5},
                    {"type": "check_strategy"}):  # fmt: skip
        assert (await ask(communicator, message))["type"] == "error"
    await communicator.send_to(bytes_data=b"\xff\xfe long when")
    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    # The socket never closed and nothing ran.
    reply = await ask(
        communicator, {"type": "check_strategy", "source": "long when: close > 1"}
    )
    assert reply["ok"] is True
    assert await communicator.receive_nothing(timeout=0.1)
    assert refused == len(hostile) and not canary.exists()
    await communicator.disconnect()


def _refused_by_cli(path) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("strategy", "check", str(path), stdout=io.StringIO())
    return str(caught.value)


async def test_hostile_files_are_refused_by_the_cli(tmp_path):
    canary = tmp_path / "canary"
    files = []
    for i, source in enumerate(sources(str(canary))):
        path = tmp_path / f"s{i}.rules"
        if isinstance(source, bytes):
            path.write_bytes(source if b"\xff" in source else source + b"\xff")
        elif isinstance(source, str):
            path.write_text(source, encoding="utf-8", errors="surrogateescape")
        else:
            continue  # not text at all: no file can hold it
        files.append(path)
    (tmp_path / "big.rules").write_text("long when: close > 1\n" + "#" * (1 << 20))
    (tmp_path / "nul.rules").write_bytes(b"long when: close > 1\x00\n")
    (tmp_path / "latin.rules").write_bytes(b"long when: close > 1 # caf\xe9\n")
    files += [tmp_path / "big.rules", tmp_path / "nul.rules", tmp_path / "latin.rules"]

    def check_all() -> list[str]:
        messages = [_refused_by_cli(path) for path in files]
        for path in files[:50]:  # saving refuses too, and writes nothing
            with pytest.raises(CommandError):
                call_command(
                    "strategy", "save", "evil", str(path), stdout=io.StringIO()
                )
        assert not Strategy.objects.exists()
        return messages

    messages = await sync_to_async(check_all)()
    assert len(messages) == len(files) and all("\n" not in m for m in messages)
    assert not canary.exists()
    assert json.dumps(messages)  # every message is plain text
