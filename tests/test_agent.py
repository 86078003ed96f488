"""HAProxy's agent check over real TCP: the line a balancer reads for free slots, a full node, a draining one,
one still loading its models and one whose models failed (server/agent.py)."""

from __future__ import annotations

import asyncio
import threading

from bench.serverproc import free_port
from server.agent import agent_line
from server.app import CALLS, DRAIN, MODELS, create_app
from server.config import Settings
from tests.fakes import fake_providers
from tests.helpers import client_offer, until


async def ask(port: int) -> str:
    """One agent check, as HAProxy makes it: connect, read the line, see the connection closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode("ascii")  # read() returns at EOF: closed
    finally:
        writer.close()


def test_the_line_is_the_free_share_of_the_slots():
    assert agent_line(True, False, False, free=2, capacity=2) == "up ready 100%\n"
    assert agent_line(True, False, False, free=1, capacity=3) == "up ready 33%\n"
    assert agent_line(True, False, False, free=1, capacity=200) == "up ready 1%\n"  # room, however little
    assert agent_line(True, False, False, free=0, capacity=2) == "up ready 0%\n"
    assert agent_line(True, False, True, free=2, capacity=2) == "up drain\n"
    assert agent_line(False, False, False, free=2, capacity=2) == "up drain\n"
    assert agent_line(True, True, False, free=2, capacity=2) == "down\n"


async def test_the_agent_follows_the_slots_and_the_drain(aiohttp_client):
    port = free_port()
    settings = Settings(ice_loopback=True, max_calls=2, agent_port=port)
    app = create_app(settings, lambda _s: fake_providers())
    client = await aiohttp_client(app)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    assert await ask(port) == "up ready 100%\n"
    answers = []
    for expected in ("up ready 50%\n", "up ready 0%\n"):
        answers.append(await client.post("/offer", json={"sdp": await client_offer(), "type": "offer"}))
        assert answers[-1].status == 200
        assert await ask(port) == expected
    await next(iter(app[CALLS].values())).close()  # a call ends: its slot is free at once
    assert await ask(port) == "up ready 50%\n"
    app[DRAIN].begin()
    assert await ask(port) == "up drain\n"
    assert (await asyncio.gather(*(ask(port) for _ in range(20)))) == ["up drain\n"] * 20  # checks at once


async def test_the_agent_says_drain_while_loading_and_down_when_loading_failed(aiohttp_client):
    release = threading.Event()

    def slow_then_broken(_settings: Settings):
        release.wait(10)
        raise RuntimeError("model file corrupt")

    port = free_port()
    app = create_app(Settings(ice_loopback=True, agent_port=port), slow_then_broken)
    await aiohttp_client(app)
    assert await ask(port) == "up drain\n"
    release.set()
    await until(lambda: app[MODELS].loaded.is_set())
    assert await ask(port) == "down\n"
