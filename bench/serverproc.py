"""The server under test, started as its own process (``python -m server``) on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m server --port N`` with loopback-only ICE; its log goes to a temporary file."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        prefix: list[str] | None = None,
        root: Path = ROOT,
    ):
        self.extra_env = env or {}
        self.root = root  # the checkout to run (another one: a baseline to compare with)
        self.host = host
        self.prefix = prefix or []  # e.g. nsenter into another network namespace
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        fd, name = tempfile.mkstemp(prefix="parley-bench-server-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PARLEY_ICE_LOOPBACK": "1", **self.extra_env}
        with self.log_path.open("wb") as log:
            # The same interpreter as the bench (.venv/bin/python), from the repository root.
            self._proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "server", "--host", self.host, "--port", str(self.port)],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def wait_healthy(self, timeout: float = 240.0) -> float:
        """Polls GET /healthz until 200 (the models are loaded); returns the seconds it took."""
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - started < timeout:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {self._proc.returncode}:\n{self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return time.monotonic() - started
                except aiohttp.ClientError:
                    pass  # not listening yet
                await asyncio.sleep(0.5)
        raise TimeoutError(f"the server was not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def signal(self, signum: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    def exit_code(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return None if self._proc is None else self._proc.poll()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT, then a second one: the drain waits for no call (PARLEY_DRAIN_S is 300 s by default), the calls
        left are ended cleanly (``ended``, ``shutdown``); kill it only if it hangs."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@asynccontextmanager
async def serving(url: str | None) -> AsyncIterator[str]:
    """``url`` as it is when given; otherwise a fresh server process, healthy, for as long as it is used."""
    if url is not None:
        yield url
        return
    server = ServerProcess()
    server.start()
    try:
        print(f"\nstarting the server on {server.url} (log: {server.log_path})", flush=True)
        print(f"server healthy after {await server.wait_healthy():.1f} s", flush=True)
        yield server.url
    finally:
        server.stop()
