"""SIGTERM and Ctrl-C on a real server process, a drain in two phases: new calls get a 503 in JSON (and /healthz,
the agent check say so) while calls in progress go on until they end by themselves; the calls left when
PARLEY_DRAIN_S has passed, or at a second signal, are told (``shutdown``) and ended; the process exits on its own."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench.serverproc import ServerProcess, free_port
from parley.rtc import CallClient
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


async def exit_code(server: ServerProcess, bound_s: float = EXIT_BOUND_S) -> int | None:
    for _ in range(int(bound_s * 10)):
        if (code := server.exit_code()) is not None:
            return code
        await asyncio.sleep(0.1)
    return None


async def agent_says(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return (await asyncio.wait_for(reader.read(), 5)).decode()
    finally:
        writer.close()


def ended(call: CallClient) -> dict | None:
    found = call.find(lambda e: e["type"] == "ended")
    return found[1] if found else None


async def test_a_call_goes_on_through_the_drain_and_the_process_exits_when_it_ends(remote_env):
    agent = free_port()
    server = await started({**remote_env, "PARLEY_AGENT_PORT": str(agent)})  # the default drain: 300 s
    call = CallClient(server.url, mode="chat")
    try:
        await call.connect()
        await call.wait_listening(30)
        assert await agent_says(agent) == "up ready 80%\n"  # capacity 5 on remote providers, one call
        server.signal(signal.SIGTERM)
        async with aiohttp.ClientSession() as http:
            for _ in range(50):  # the signal is handled at once; allow for a busy machine
                if await agent_says(agent) == "up drain\n":
                    break
                await asyncio.sleep(0.1)
            assert await agent_says(agent) == "up drain\n"
            refused = await http.post(f"{server.url}/offer", json={"sdp": await client_offer(), "type": "offer"})
            assert refused.status == 503 and "shutting down" in (await refused.json())["error"]
            health = await http.get(f"{server.url}/healthz")
            assert health.status == 503 and (await health.json())["error"] == "shutting down"
            status = await (await http.get(f"{server.url}/status")).json()
            assert status["draining"] is True and status["ready"] is False and status["active_calls"] == 1
        asked = time.monotonic()
        call.send({"type": "text", "text": "Are you still there?"})  # the call goes on: it is answered, aloud
        _, caption = await call.wait_for(lambda e: e["type"] == "caption", 20, asked)
        assert caption["text"]
        await asyncio.sleep(1.0)
        assert call.recording.first_loud_after(asked) is not None, "no reply audio during the drain"
        assert ended(call) is None and server.exit_code() is None
        await call.end()  # the person hangs up: the call ends normally, and the drained process exits
        assert ended(call) == {"type": "ended", "reason": "requested"}
        hung_up = time.monotonic()
        assert await exit_code(server) == 0, server.log_tail()
        print(f"exited {time.monotonic() - hung_up:.1f} s after the last call ended")
    finally:
        await call.close()
        server.stop()
    log = server.log_path.read_text()
    assert "SIGTERM received" in log and "waiting up to 300 s for 1 calls" in log and "Traceback" not in log


async def test_calls_left_when_the_drain_time_has_passed_are_ended_with_shutdown(remote_env):
    server = await started({**remote_env, "PARLEY_DRAIN_S": "2"})
    call = CallClient(server.url, mode="chat")
    try:
        await call.connect()
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        when, event = await call.wait_for(lambda e: e["type"] == "ended", 30)
        assert event["reason"] == "shutdown"
        assert when - signalled >= 1.9  # not before the drain time: the call had those 2 s
        assert await exit_code(server) == 0, server.log_tail()
    finally:
        await call.close()
        server.stop()


async def test_a_second_ctrl_c_ends_the_calls_at_once(remote_env):
    server = await started(remote_env)  # the default drain: 300 s
    call = CallClient(server.url, mode="chat")
    try:
        await call.connect()
        server.signal(signal.SIGINT)
        await asyncio.sleep(1.5)
        assert ended(call) is None and server.exit_code() is None  # waiting for the call
        second = time.monotonic()
        server.signal(signal.SIGINT)
        when, event = await call.wait_for(lambda e: e["type"] == "ended", 20)
        assert event["reason"] == "shutdown"
        assert await exit_code(server) == 0, server.log_tail()
        print(f"ended {when - second:.2f} s after the second Ctrl-C")
    finally:
        await call.close()
        server.stop()
    log = server.log_path.read_text()
    assert "waiting up to 300 s for 1 calls to end; press Ctrl-C again to end them now" in log
    assert "Traceback" not in log


async def test_a_drain_with_nothing_to_end_exits_at_once(remote_env):
    server = await started(remote_env)  # the default drain (300 s) is not waited out with no call
    try:
        server.signal(signal.SIGTERM)
        assert await exit_code(server, 20) == 0, server.log_tail()
    finally:
        server.stop()
