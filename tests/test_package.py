"""The wheel as a user gets it: ``python -m build`` makes it, pip installs it without the ``local`` extra in a fresh
virtual environment (no compiler, none of the embedded runtimes), ``parley models --remote-only`` fetches the VAD
and end-of-turn weights, and ``parley serve`` on remote providers (the fake OpenAI-compatible server) answers a
call placed with the repository's client. The installs are offline, from a wheelhouse of this environment's own
distributions (tests/wheelhouse.py): the tests have no network."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bench.serverproc import ServerProcess
from parley.rtc import CallClient
from server.ice import use_loopback_only
from server.providers.local import weights
from tests import wheelhouse
from tests.fake_openai import KEY, FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
# faster-whisper is a core dependency: the end-of-turn model, which runs with remote providers too, uses it.
RUNTIMES = ("llama-cpp-python", "piper-tts", "pykakasi")

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from the sdist (what PyPI would get)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (found,) = out.glob("parley_voice-*-py3-none-any.whl")
    return found


def metadata(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode().splitlines()


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh virtual environment with the wheel and its core dependencies; the environment to run it in."""
    tmp = tmp_path_factory.mktemp("fresh")
    requires = [line.split(":", 1)[1].strip() for line in metadata(wheel) if line.startswith("Requires-Dist:")]
    wheels = wheelhouse.build(requires, tmp / "wheels", models=weights.REMOTE_FILES)
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PARLEY_CACHE_DIR": str(tmp / "cache")}
    started = time.monotonic()
    subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "-q", str(wheel)],
        check=True, env=env, cwd=tmp, timeout=400,
    )  # fmt: skip
    print(f"installed the wheel in a fresh environment in {time.monotonic() - started:.0f} s")
    return env_dir, env


def test_the_wheel_carries_the_page_the_pins_and_the_runtimes_only_as_the_local_extra(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"client/static/index.html", "client/static/app.js", "parley/py.typed", "parley/cli.py"} <= names
    assert {"server/dialogue/questions.json", "server/providers/local/requirements-models.txt"} <= names
    lines = metadata(wheel)
    assert "Name: parley-voice" in lines
    requires = [line for line in lines if line.startswith("Requires-Dist:")]
    for runtime in RUNTIMES:  # each one only with an extra (llama-cpp-python[server] comes with "test" too)
        lines = [r for r in requires if r.split(":")[1].strip().startswith(runtime)]
        assert any(line.endswith('extra == "local"') for line in lines), lines
        assert all("; extra ==" in line for line in lines), lines
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert "parley = parley.cli:main" in archive.read(entry_points).decode()


class InstalledServer(ServerProcess):
    """``parley serve`` of the fresh environment, run outside the checkout so nothing is imported from it."""

    def __init__(self, env_dir: Path, env: dict[str, str]) -> None:
        super().__init__(env, root=Path(env["PARLEY_CACHE_DIR"]).parent)
        self.env_dir = env_dir

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [self.env_dir / "bin" / "parley", "serve", "--host", self.host, "--port", str(self.port)],
                cwd=self.root, env={**self.extra_env, "PARLEY_ICE_LOOPBACK": "1"}, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip


@pytest.fixture
async def remote(installed: tuple[Path, dict[str, str]]) -> AsyncIterator[dict[str, str]]:
    fake = await FakeOpenAI().start()
    yield {**installed[1], "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai",
           "PARLEY_LLM": "openai", "PARLEY_TTS": "openai"}  # fmt: skip
    await fake.close()


async def run(command: list, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command of the fresh environment, off the event loop (the fake OpenAI server shares it)."""
    return await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


async def health(url: str, timeout: float) -> tuple[int, dict]:
    """/healthz once the server has finished loading (or failed to)."""
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with http.get(f"{url}/healthz") as resp:
                    body = await resp.json()
                    if body.get("error") != "loading models" or time.monotonic() > deadline:
                        return resp.status, body
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.5)


async def test_the_wheel_installs_without_the_runtimes_fetches_its_weights_and_serves_a_call(
    installed: tuple[Path, dict[str, str]], remote: dict[str, str]
):
    env_dir, env = installed
    python = env_dir / "bin" / "python"
    probe = await run(
        [python, "-c", "import server, importlib.util as u; print(server.__file__); "
         "print([m for m in ('llama_cpp', 'piper', 'pykakasi') if u.find_spec(m)])"],
        env, cwd=env_dir.parent,
    )  # fmt: skip
    where = probe.stdout.splitlines()
    assert where[0].startswith(str(env_dir)), where  # the installed copy, not the checkout
    assert where[1] == "[]"  # no embedded runtime came with the core install
    use_loopback_only()

    # Before `parley models`: the server starts, and says what is missing and what to run.
    server = InstalledServer(env_dir, remote)
    server.start()
    try:
        status, body = await health(server.url, 120)
    finally:
        server.stop()
    assert status == 503 and "parley models" in body["error"] and "silero-vad" in body["error"], body

    models = await run([env_dir / "bin" / "parley", "models", "--remote-only"], env, cwd=env_dir.parent)
    assert models.returncode == 0, models.stderr
    cache = Path(env["PARLEY_CACHE_DIR"])
    assert all(weights.is_ready(model, cache) for model in weights.REMOTE_FILES)
    assert not weights.is_ready(weights.QWEN_CODER_1_5B, cache)  # --remote-only: not the 1 GB chat model

    wav = None
    if shutil.which("espeak-ng"):  # a spoken question for `parley call` (the fake transcribes any speech)
        wav = env_dir.parent / "question.wav"
        said = await run(["espeak-ng", "-v", "en-us", "-w", str(wav), "Can you hear me?"], env, cwd=env_dir.parent)
        assert said.returncode == 0, said.stderr
    await call_gets_a_reply(InstalledServer(env_dir, remote), 120, (env_dir, env, wav) if wav else None)


async def call_gets_a_reply(
    server: InstalledServer, ready_s: float, cli: tuple[Path, dict[str, str], Path] | None = None
) -> None:
    """A chat call to ``server`` once healthy: a typed question is answered aloud, with a caption."""
    server.start()
    call = CallClient(server.url, mode="chat")
    try:
        await server.wait_healthy(ready_s)
        await call.connect()
        await call.wait_listening(60)
        asked = time.monotonic()
        call.send({"type": "text", "text": "Hello, can you hear me?"})
        _, caption = await call.wait_for(lambda e: e["type"] == "caption" and e.get("role") != "user", 90, asked)
        assert caption["text"]
        await asyncio.sleep(1.0)
        assert call.recording.first_loud_after(asked) is not None, "no reply audio"
        if cli is not None:  # and `parley call` of the installed package, a spoken question from a WAV
            env_dir, env, wav = cli
            done = await run(
                [env_dir / "bin" / "parley", "call", "--wav", str(wav), "--out", str(wav.with_name("reply.wav")),
                 "--url", server.url, "--mode", "chat"],
                {**env, "PARLEY_ICE_LOOPBACK": "1"}, cwd=wav.parent,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            assert any(e["type"] == "transcript" and e["role"] == "assistant" for e in events), done.stdout
            assert wav.with_name("reply.wav").stat().st_size > 48_000, "no reply recorded"
    finally:
        await call.close()
        server.stop()
    assert "Traceback" not in server.log_path.read_text(), server.log_tail()


async def test_with_the_local_extra_it_serves_on_the_embedded_models(
    wheel: Path, installed: tuple[Path, dict[str, str]]
):
    """The extra adds the runtimes (llama-cpp-python from the wheel this environment built, not a new build); the
    weights are the real cache's, already joined, read and not written (``parley models`` finds them verified)."""
    real_cache = weights.cache_dir()
    if not all(weights.is_ready(model, real_cache) for model in weights.ALL_FILES):
        pytest.skip(f"the embedded models are not joined in {real_cache} (make test's setup does it)")
    env_dir, env = installed
    requires = ["llama-cpp-python==0.3.36", "piper-tts==1.8.0", "pykakasi==2.3.0"]
    wheelhouse.build(requires, Path(env["PIP_FIND_LINKS"]))
    extra = await run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[local]"], env, env_dir)
    assert extra.returncode == 0, extra.stderr
    local_env = {**env, "PARLEY_CACHE_DIR": str(real_cache)}
    models = await run([env_dir / "bin" / "parley", "models"], local_env, cwd=env_dir.parent)
    assert models.returncode == 0 and "downloading" not in models.stdout, models.stdout + models.stderr
    use_loopback_only()
    for stage in ("STT", "LLM", "TTS"):
        local_env.pop(f"PARLEY_{stage}", None)
    local_env.pop("OPENAI_API_KEY", None)  # the default is then the embedded models
    await call_gets_a_reply(InstalledServer(env_dir, local_env), ready_s=240)
