"""Shared fixtures: an app with scripted providers, speech clips (real ones where a folder of recorded speech
exists, otherwise sentences the embedded TTS says), and a real aiortc client.

Recorded human speech is not in the repository. The tests marked ``shared_audio`` read it from
``$PARLEY_SHARED_AUDIO`` (default ``../shared/audio`` beside the checkout): a folder per language code
(``en/``, ``fr/``, ``ja/``, ...) of 16-bit PCM mono WAV clips named ``<name>_48k.wav`` and ``<name>_16k.wav``
with transcripts in ``<name>.txt``, and ``nonspeech/`` (noise, music, laughter, a bird). "Recorded speech" in
bench/README.md lists the clips these tests name and public sources (LibriSpeech, FLEURS, Common Voice,
ESC-50). Without the folder those tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from parley.rtc import CallClient
from server.app import MODELS, create_app
from server.config import Settings
from server.providers.base import Providers
from server.providers.local.tts import PiperTTS
from tests.fakes import fake_providers
from tests.pg_cluster import Cluster

# The fast tier (make test-fast, pytest -m fast): every test that starts no server, places no call, loads no model
# and runs no subprocess. It is marked here by what a test uses, so a new unit test joins it by itself.
SLOW_FIXTURES = {
    "start_server", "call_client", "started_apps", "aiohttp_client", "tts_speech", "piper", "real_providers",
    "silero", "fake", "fake_servers",  # fake, fake_servers: OpenAI-compatible servers (test_openai, test_keys)
    "library_server",  # a server process (test_library)
}  # fmt: skip
SLOW_MARKERS = ("real_models", "browser", "shared_audio", "postgres")
SLOW_MODULES = {  # servers in subprocesses, espeak-ng, a browser, hypothesis over HTTP, raw-socket servers
    "test_drain", "test_soak", "test_turn_relay", "test_llama_server", "test_voices", "test_http_fuzz",
    "test_real_models", "test_languages_real", "test_browser", "test_http_limits", "test_cluster",
    "test_inference_tier", "test_pre_stop", "test_turn_model", "test_page_reconnect", "test_page_framed",
    "test_call_page", "test_js_types", "test_history", "test_history_page", "test_recording",
    "test_package", "test_setup",  # pip installs into fresh virtual environments
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        slow = (
            module in SLOW_MODULES
            or not SLOW_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
            or any(item.get_closest_marker(marker) for marker in SLOW_MARKERS)
        )
        if not slow:
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    """The embedded English voice, loaded once: for a bot that speaks real speech with scripted words."""
    return PiperTTS()


@pytest.fixture(scope="session")
def tts_speech(piper: PiperTTS) -> Callable[[str], np.ndarray]:
    """Says a sentence with the embedded Piper voice: int16 mono 48 kHz speech any machine can make."""
    from parley.audio import RATE
    from server.audio.outbound import OutputResampler

    voice = piper
    cache: dict[str, np.ndarray] = {}

    def say(text: str) -> np.ndarray:
        if text not in cache:
            chunks = list(voice._voice.synthesize(text))
            pcm = np.concatenate([c.audio_int16_array.reshape(-1) for c in chunks])
            resampler = OutputResampler(chunks[0].sample_rate)
            out = np.concatenate([resampler.push(pcm), resampler.flush()])
            assert RATE == 48_000
            cache[text] = out
        return cache[text]

    return say


@pytest.fixture
def silence() -> Callable[[float], np.ndarray]:
    return lambda seconds: np.zeros(int(seconds * 48_000), dtype=np.int16)


@pytest.fixture
def started_apps() -> list[web.Application]:
    """The apps ``start_server`` started, in order: for tests that look inside the server (e.g. its calls)."""
    return []


@pytest.fixture
async def start_server(started_apps: list[web.Application]) -> AsyncIterator[Callable[..., asyncio.Future]]:
    """Starts the app on a loopback port with the given providers; returns its base URL."""
    servers: list[TestServer] = []

    async def start(providers: Providers | None = None, settings: Settings | None = None) -> str:
        chosen = providers or fake_providers()
        # The end-of-turn model is off unless a test asks for it: scripted turns end on silence alone.
        app = create_app(settings or Settings(ice_loopback=True, hangover_ms=500, turn_model="off"), lambda _s: chosen)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        started_apps.append(app)
        await asyncio.wait_for(app[MODELS].loaded.wait(), 120)
        assert app[MODELS].error is None, app[MODELS].error
        return str(server.make_url("")).rstrip("/")

    yield start  # type: ignore[misc]
    for server in servers:
        await server.close()


@pytest.fixture
async def call_client() -> AsyncIterator[Callable[..., asyncio.Future]]:
    """Opens real aiortc calls to a server; all are hung up at the end of the test."""
    clients: list[CallClient] = []

    async def open_call(url: str, mode: str | None = None, language: str | None = None) -> CallClient:
        client = CallClient(url, mode, language)
        clients.append(client)
        await client.connect()
        return client

    yield open_call  # type: ignore[misc]
    for client in clients:
        await client.close()


@pytest.fixture(scope="session")
def real_providers() -> Providers:
    """The embedded models (Whisper base, Qwen2.5-Coder-1.5B, Piper), loaded once for the session."""
    from server.providers.registry import load_local

    return load_local(Settings())


# The record of calls (server/history/) of the servers tests start goes to a folder of this run's, not to the
# user's data folder: settings that name no PARLEY_DATA_DIR fall back to $XDG_DATA_HOME/parley.
_DATA_HOME = tempfile.mkdtemp(prefix="parley-test-data-")
os.environ["XDG_DATA_HOME"] = _DATA_HOME
atexit.register(shutil.rmtree, _DATA_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for the session's tests that ask for it (tests/pg_cluster.py)."""
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.stop()
