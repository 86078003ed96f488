"""A real cluster of one host for benchmarks and tests: ``python -m server.cluster``'s configuration run by
Debian's supervisord and HAProxy on free loopback ports, with its workers' three stages on
tests/fake_openai.py (in its own process, answering at once, so workers start in seconds). Also what both
measure on it: where a call landed, a worker's late frames, and how long HAProxy takes to drop and take back a
worker that was killed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.serverproc import free_port
from server.cluster import files, runtime
from server.cluster.__main__ import start
from tests.fake_openai import KEY

# Runs tests/fake_openai.py in its own process: the workers' three stages, answering at once.
FAKE_SERVER = """
import asyncio, sys
from tests.fake_openai import FakeOpenAI
async def main():
    fake = await FakeOpenAI().start()
    print(fake.base_url, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@dataclass
class Running:
    cluster: files.Cluster
    url: str
    https_url: str

    @property
    def run_dir(self) -> Path:
        return self.cluster.run_dir

    def worker_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.cluster.worker_port(int(name[1:]))}"

    async def placed_on(self, session_id: str | None) -> tuple[str, str]:
        """The worker that answered a call, and the caller's address it saw (from the worker's log, which
        supervisord writes a moment later)."""
        for _ in range(50):
            for name in self.cluster.names():
                for log in sorted(self.run_dir.glob(f"{name}.log*")):
                    if found := re.search(rf"call {session_id}: \S+ from (\S+)", log.read_text(errors="replace")):
                        return name, found.group(1)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no worker logged call {session_id}")

    def pid(self, name: str) -> int:
        """A worker's process id (``w1``...), or HAProxy's master process's (``haproxy``)."""
        program = name if name == "haproxy" else f"workers:{name}"
        return int(runtime.supervisorctl(self.run_dir, "pid", program).strip())


def wait_all_idle(running: Running, timeout_s: float = 120.0) -> None:
    """Every worker up in HAProxy with all its slots free (weight 100), and idle by its own /status."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = runtime.servers(running.run_dir)
        idle = len(states) == running.cluster.workers and all(
            s.status == "UP" and s.weight == 100 for s in states.values()
        )
        if idle:
            for name in running.cluster.names():
                with urllib.request.urlopen(f"{running.worker_url(name)}/status", timeout=5) as resp:
                    idle = idle and json.load(resp)["active_calls"] == 0
        if idle:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster is not idle: {states}\n{runtime.supervisorctl(running.run_dir, 'status')}")
        time.sleep(0.2)


class ClusterProcess:
    """supervisord (with HAProxy and the workers) and the fake providers, started by ``start`` and stopped
    by ``stop``. ``env`` adds settings for the workers (PARLEY_MAX_CALLS...); ``options`` go to
    ``files.Cluster`` (workers, drain_s, offers_per_minute, tls_cert...); the ports are free ones."""

    def __init__(self, run_dir: Path, env: dict[str, str] | None = None, **options: object) -> None:
        self.run_dir = run_dir
        self.env = env or {}
        self.options = options
        self.running: Running | None = None
        self._fake: subprocess.Popen[str] | None = None
        self._supervisord: subprocess.Popen[bytes] | None = None

    def start(self, idle_timeout_s: float = 120.0) -> Running:
        with (self.run_dir / "fake_openai.log").open("wb") as log:  # a caller gone mid-answer logs a traceback
            self._fake = subprocess.Popen([sys.executable, "-c", FAKE_SERVER], stdout=subprocess.PIPE, text=True,
                                          stderr=log, cwd=files.ROOT)  # fmt: skip
        assert self._fake.stdout is not None
        base_url = self._fake.stdout.readline().strip()
        cluster = files.Cluster(
            run_dir=self.run_dir, port=free_port(), tls_port=free_port(), worker_base_port=free_port(),
            agent_base_port=free_port(), **self.options,  # type: ignore[arg-type]
        )  # fmt: skip
        environ = {
            **os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url, "PARLEY_STT": "openai",
            "PARLEY_LLM": "openai", "PARLEY_TTS": "openai", "PARLEY_ICE_LOOPBACK": "1", **self.env,
        }  # fmt: skip
        command = start(cluster, environ)
        with (self.run_dir / "supervisord.out").open("wb") as out:
            self._supervisord = subprocess.Popen(command, env=files.worker_env(cluster, environ), stdout=out,
                                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.running = Running(cluster, f"http://127.0.0.1:{cluster.port}", f"https://127.0.0.1:{cluster.tls_port}")
        for _ in range(100):  # the runtime API's socket comes with HAProxy
            if (self.run_dir / "haproxy.sock").exists():
                break
            time.sleep(0.2)
        wait_all_idle(self.running, idle_timeout_s)
        return self.running

    def stop(self) -> None:
        """SIGTERM to supervisord: it drains the workers, then stops HAProxy; killed if that takes too long."""
        if self._supervisord is not None:
            pids = runtime.supervisorctl(self.run_dir, "pid", "all").split()
            self._supervisord.send_signal(signal.SIGTERM)
            try:
                self._supervisord.wait(float(str(self.options.get("drain_s", 300.0))) + 20)
            except subprocess.TimeoutExpired:
                self._supervisord.kill()
                for pid in filter(str.isdigit, pids):
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if self._fake is not None:
            self._fake.kill()
            self._fake.wait()


async def slow_frames(worker_url: str) -> dict[str, float]:
    """How many outgoing frames a worker has sent more than 0.1, 0.2 and 0.5 s after the one before
    (its parley_frame_gap_seconds histogram)."""
    async with aiohttp.ClientSession() as http, http.get(f"{worker_url}/metrics") as resp:
        text = await resp.text()
    count = float(re.search(r"^parley_frame_gap_seconds_count (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return {
        le: count - float(re.search(rf'^parley_frame_gap_seconds_bucket{{le="{le}"}} (\S+)$', text, re.M).group(1))  # type: ignore[union-attr]
        for le in ("0.1", "0.2", "0.5")
    }


async def down_and_back(run_dir: Path, name: str, killed: float) -> tuple[float, float]:
    """HAProxy's view of worker ``name``, every 0.1 s, until it is back after being killed at ``killed``
    (time.monotonic()): the seconds until HAProxy had it down, and until it took offers again."""
    down_after: float | None = None
    while True:
        state = (await asyncio.to_thread(runtime.servers, run_dir))[name]
        if down_after is None and state.status.startswith("DOWN"):
            down_after = time.monotonic() - killed
        if down_after is not None and state.takes_offers:
            return down_after, time.monotonic() - killed
        await asyncio.sleep(0.1)
