"""llama-cpp-python's own OpenAI-compatible server on the embedded GGUF, as a test starts it: the chat stage's
real server in test_llama_server.py, and the replicas of the inference tier in test_inference_tier.py."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import aiohttp

from server.providers.local import weights


class Replica:
    """One llama_cpp.server process on a port of its own, small context. By default llama-cpp-python's server ends
    the reply it streams as soon as any other request arrives (a health check included):
    ``--interrupt_requests False``."""

    def __init__(self, port: int, model: str, threads: int = 1) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(weights.ensure(weights.QWEN_CODER_1_5B)),
             "--model_alias", model, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
             "--n_threads", str(threads), "--interrupt_requests", "False"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def ready(self, http: aiohttp.ClientSession) -> None:
        for _ in range(240):
            assert self.proc.poll() is None, "llama_cpp.server exited"
            try:
                async with http.get(f"{self.url}/models") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError("llama_cpp.server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
