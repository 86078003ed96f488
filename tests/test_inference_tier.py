"""The inference tier (deploy/haproxy-inference.cfg): a real HAProxy in front of two llama-cpp-python servers on the
embedded GGUF (the chat stage) and two OpenAI-compatible fakes (speech recognition and synthesis), with a Parley
server whose three stages are remote and point at HAProxy. A replica killed between turns costs no turn; one
killed while it streams a reply costs that turn only (the person gets an error and the spoken apology)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from parley.rtc import CallClient
from server.app import MODELS, create_app
from server.config import Settings
from server.dialogue.modes import APOLOGIES
from tests.fake_openai import FakeOpenAI
from tests.helpers import ROOT
from tests.llama_replica import Replica

pytestmark = [
    pytest.mark.real_models,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (scripts/setup.sh)"),
]

CONFIG = ROOT / "deploy" / "haproxy-inference.cfg"
MODEL = "qwen-coder-1.5b"
# Health routes: llama-cpp-python's server has no /health, and its /v1/models waits behind a reply in progress
# (so a replica would look down while it talks); its API schema answers at once. The fakes list their models.
CHECKS = {"LLM_CHECK_URI": "/openapi.json", "STT_CHECK_URI": "/v1/models", "TTS_CHECK_URI": "/v1/models"}
FAKE_KEY = "unused"  # what Parley's SDK sends to an endpoint without a key; the fakes want it, like a keyed server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Balancer:
    """HAProxy run from the shipped file, its addresses from the environment; read through its runtime API."""

    def __init__(self, tmp: Path, replicas: dict[str, str]) -> None:
        self.socket = tmp / "inference.sock"
        self.ports = {stage: free_port() for stage in ("llm", "stt", "tts", "metrics")}
        env = {**os.environ, **replicas, "INFERENCE_STATS_SOCKET": str(self.socket), "INFERENCE_CHECK_KEY": FAKE_KEY,
               **CHECKS}  # fmt: skip
        env.update({f"INFERENCE_{stage.upper()}_BIND": f"127.0.0.1:{port}" for stage, port in self.ports.items()})
        self.log = (tmp / "haproxy.log").open("wb")
        self.proc = subprocess.Popen(["haproxy", "-W", "-db", "-f", str(CONFIG)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip

    def url(self, stage: str) -> str:
        return f"http://127.0.0.1:{self.ports[stage]}/v1"

    async def servers(self, backend: str) -> dict[str, dict[str, str]]:
        """``show stat`` rows of ``backend``'s servers, by name."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        writer.write(b"show stat\n")
        text = (await reader.read()).decode()
        writer.close()
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return {r["svname"]: r for r in rows if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")}

    async def wait_status(self, backend: str, server: str, status: str, timeout: float) -> float:
        """Seconds until HAProxy reports ``server`` with ``status`` (UP, DOWN)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, "haproxy exited"
            if self.socket.exists():
                try:
                    if (await self.servers(backend))[server]["status"] == status:
                        return time.monotonic() - started
                except OSError:
                    pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{backend}/{server} not {status} after {timeout} s")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started = [Replica(free_port(), MODEL) for _ in range(2)]
    yield started
    for replica in started:
        replica.stop()


@pytest.fixture
async def tier(replicas: list[Replica], tmp_path: Path) -> AsyncIterator[Balancer]:
    """Both chat replicas loaded and UP in HAProxy, each speech stage on two fakes."""
    fakes = [await FakeOpenAI(key=FAKE_KEY).start() for _ in range(2)]
    addresses = {f"LLM_{i + 1}": f"127.0.0.1:{r.port}" for i, r in enumerate(replicas)}
    for i, fake in enumerate(fakes):
        host_port = fake.base_url.removeprefix("http://").removesuffix("/v1")
        addresses |= {f"STT_{i + 1}": host_port, f"TTS_{i + 1}": host_port}
    balancer = Balancer(tmp_path, addresses)
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(r.ready(http) for r in replicas))
        for backend in ("llm", "stt", "tts"):
            for n in (1, 2):
                await balancer.wait_status(backend, f"{backend}{n}", "UP", 30)
        yield balancer
    finally:
        balancer.close()
        for fake in fakes:
            await fake.close()


@pytest.fixture
async def parley(tier: Balancer) -> AsyncIterator[str]:
    """A Parley server with every stage remote, through the tier: the real providers and start-up check. The
    SDK's own retries are off, so a turn that survives a dead replica was saved by HAProxy."""
    settings = Settings(
        stt="openai", llm="openai", tts="openai", ice_loopback=True, hangover_ms=500,
        stt_base_url=tier.url("stt"), llm_base_url=tier.url("llm"), tts_base_url=tier.url("tts"),
        llm_model=MODEL, llm_context=2048, llm_max_tokens=60, llm_timeout_s=60, listen_ahead="off", max_retries=0,
    )  # fmt: skip
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await asyncio.wait_for(app[MODELS].loaded.wait(), 60)
        assert app[MODELS].error is None, app[MODELS].error
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def call(parley: str) -> AsyncIterator[CallClient]:
    client = CallClient(parley, "chat")
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


async def ask(call: CallClient, text: str, after: float) -> tuple[float, dict]:
    """Types ``text``; the bot's first transcript or error after it."""
    call.send({"type": "text", "text": text})
    return await call.wait_for(
        lambda e: e["type"] == "error" or (e["type"] == "transcript" and e["role"] == "assistant"), 120, after
    )


def errors(call: CallClient) -> list[dict]:
    return [e for _, e in call.events if e["type"] == "error"]


async def test_a_replica_killed_between_turns_costs_no_turn(tier, replicas, call):
    greeted = await call.wait_listening()  # the greeting's speech came through the tier's speech backend
    before = await tier.servers("llm")
    t, said = await ask(call, "What is the capital city of France? Answer in one short sentence.", greeted)
    assert said["type"] == "transcript" and "paris" in said["text"].lower(), said
    await call.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening", 60, t)

    # Kill the replica that did not answer: leastconn, with both idle, turns to it next, before any health
    # check has seen it die.
    after = await tier.servers("llm")
    idle = next(i for i, name in enumerate(("llm1", "llm2")) if after[name]["stot"] == before[name]["stot"])
    replicas[idle].kill()
    t, said = await ask(call, "What is the capital city of Italy? Answer in one short sentence.", time.monotonic())
    assert said["type"] == "transcript" and "rome" in said["text"].lower(), said
    assert errors(call) == []
    await tier.wait_status("llm", f"llm{idle + 1}", "DOWN", 5)  # what the operator sees, on the dashboards too
    assert (await tier.servers("llm"))[f"llm{idle + 1}"]["wredis"] == "1"  # the turn did go to it first
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{tier.ports['metrics']}/metrics") as got:
        metrics = await got.text()
    assert f'haproxy_server_status{{proxy="llm",server="llm{idle + 1}",state="DOWN"}} 1' in metrics


async def test_a_replica_killed_mid_reply_costs_that_turn_only(tier, replicas, call):
    greeted = await call.wait_listening()
    call.send({"type": "text", "text": "Tell me a long story about a cat, in ten short sentences."})
    started, _ = await call.wait_for(lambda e: e["type"] == "state" and e["state"] == "speaking", 120, greeted)
    streaming = await tier.servers("llm")
    busy = next(i for i, name in enumerate(("llm1", "llm2")) if streaming[name]["scur"] != "0")
    replicas[busy].kill()  # its reply is still streaming: max 60 tokens, one thread

    t, failed = await call.wait_for(lambda e: e["type"] == "error", 30, started)
    assert failed["code"] == "provider_failed" and "cut off" in failed["message"], failed
    _, apology = await call.wait_for(
        lambda e: e["type"] == "transcript" and e["role"] == "assistant" and not e["interrupted"], 30, t
    )
    assert apology["text"] == APOLOGIES["en"]
    assert call.recording.first_loud_after(t) is not None  # the apology is heard, not only shown
    await call.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening", 30, t)

    t, said = await ask(call, "What is the capital city of France? Answer in one short sentence.", time.monotonic())
    assert said["type"] == "transcript" and "paris" in said["text"].lower(), said
