"""SIGTERM on a real server process: new calls get a 503 in JSON while ongoing calls are told and ended, and the
process exits on its own."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench.serverproc import ServerProcess
from client.call import CallClient
from server.ice import use_loopback_only
from tests.fake_openai import KEY, FakeOpenAI
from tests.helpers import client_offer

EXIT_BOUND_S = 60  # generous: the point is that it exits by itself, not how fast on a busy machine


@pytest.fixture
async def remote_env() -> AsyncIterator[dict[str, str]]:
    """Every stage on a local OpenAI-compatible fake, so the server process starts in seconds."""
    fake = await FakeOpenAI().start()
    yield {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_LOG_LEVEL": "INFO"}  # fmt: skip
    await fake.close()


async def started(env: dict[str, str]) -> ServerProcess:
    use_loopback_only()
    server = ServerProcess(env)
    server.start()
    await server.wait_healthy(120)
    return server


async def exit_code(server: ServerProcess) -> int | None:
    for _ in range(EXIT_BOUND_S * 10):
        if (code := server.exit_code()) is not None:
            return code
        await asyncio.sleep(0.1)
    return None


async def test_sigterm_refuses_new_calls_ends_ongoing_ones_and_exits(remote_env):
    server = await started({**remote_env, "PARLEY_DRAIN_S": "120"})  # lingers until the second signal
    call = CallClient(server.url, mode="chat")
    try:
        await call.connect()
        server.signal(signal.SIGTERM)
        _, ended = await call.wait_for(lambda e: e["type"] == "ended", 20)
        assert ended["reason"] == "shutdown"
        async with aiohttp.ClientSession() as http:
            refused = await http.post(f"{server.url}/offer", json={"sdp": await client_offer(), "type": "offer"})
            assert refused.status == 503 and "shutting down" in (await refused.json())["error"]
            health = await http.get(f"{server.url}/healthz")
            assert health.status == 503 and (await health.json())["error"] == "shutting down"
            for _ in range(300):  # the server hangs up: the client's connection goes too (slower when loaded)
                if call.pc.connectionState in ("closed", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert call.pc.connectionState in ("closed", "failed")
            status = await (await http.get(f"{server.url}/status")).json()
            assert status["draining"] is True and status["ready"] is False and status["active_calls"] == 0
        server.signal(signal.SIGTERM)  # a second signal cuts the linger short
        assert await exit_code(server) == 0, server.log_tail()
    finally:
        await call.close()
        server.stop()
    log = server.log_path.read_text()
    assert "SIGTERM received" in log and "Traceback" not in log


async def test_a_drain_with_nothing_to_end_exits_by_itself(remote_env):
    server = await started({**remote_env, "PARLEY_DRAIN_S": "0.5"})
    try:
        server.signal(signal.SIGTERM)
        assert await exit_code(server) == 0, server.log_tail()
    finally:
        server.stop()
