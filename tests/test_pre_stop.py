"""The preStop hook of deploy/k8s/parley.yaml, run as the kubelet would: inside the PID namespace of a real worker
that is its PID 1 (as ``python -m server`` is in the container). It must start the drain (the worker, as PID 1,
does act on SIGTERM) and not return until the worker has exited, so that the kubelet's own SIGTERM, sent when the
hook returns, is never the second signal that would end the calls at once: a call in progress goes on until
``PARLEY_DRAIN_S`` has passed."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from bench.serverproc import ServerProcess
from parley.rtc import CallClient
from server.ice import use_loopback_only
from tests.fake_openai import KEY, FakeOpenAI
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("nsenter") is None, reason="util-linux unshare/nsenter missing"
)
DRAIN_S = 3.0


def pre_stop() -> list[str]:
    for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "parley.yaml").read_text()):
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "parley":
            return doc["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    raise AssertionError("no Deployment parley")


@pytest.fixture
async def worker() -> AsyncIterator[ServerProcess]:
    """A worker as PID 1 of a PID namespace of its own, every stage on an OpenAI-compatible fake."""
    fake = await FakeOpenAI().start()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_DRAIN_S": str(DRAIN_S)}  # fmt: skip
    use_loopback_only()
    server = ServerProcess(env, prefix=["unshare", "--pid", "--fork", "--kill-child"])
    server.start()
    try:
        await server.wait_healthy(120)
        yield server
    finally:
        server.stop()
        await fake.close()


def namespace_init(server: ServerProcess) -> int:
    """The worker's PID as seen from outside: the child unshare forked (PID 1 inside)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


async def test_the_pre_stop_hook_drains_the_worker_and_returns_only_once_it_has_exited(worker):
    call = CallClient(worker.url, mode="chat")
    try:
        await call.connect()
        await call.wait_listening()
        started = time.monotonic()
        hook = await asyncio.create_subprocess_exec("nsenter", "--target", str(namespace_init(worker)), "--pid",
                                                    "--", *pre_stop())  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for _ in range(50):  # the drain has begun: nothing new is admitted
                async with http.get(f"{worker.url}/healthz") as health:
                    if health.status == 503:
                        break
                await asyncio.sleep(0.1)
            assert health.status == 503
        assert hook.returncode is None  # still waiting for the worker

        await asyncio.wait_for(hook.wait(), 60)
        waited = time.monotonic() - started
        for _ in range(50):
            if worker.exit_code() is not None:
                break
            await asyncio.sleep(0.1)
        assert worker.exit_code() == 0, worker.log_tail()
        assert waited >= DRAIN_S - 0.5  # it waited out the drain, not just sent the signal
        at, ended = await call.wait_for(lambda e: e["type"] == "ended", 5, started)
        assert ended["reason"] == "shutdown" and at - started >= DRAIN_S - 0.5  # the call went on meanwhile
    finally:
        await call.close()
    log = worker.log_path.read_text()
    assert "SIGTERM received" in log and "received again" not in log and "Traceback" not in log, log
