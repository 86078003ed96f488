"""A stage's API key goes only to the endpoint it was configured for: ``PARLEY_<STAGE>_API_KEY`` to that stage's
endpoint, ``OPENAI_API_KEY`` to OpenAI's own (or the SDK's default) and nowhere else unless the operator says so
(``PARLEY_SHARE_OPENAI_KEY``). Three OpenAI-compatible fakes, one per stage, each record every key they get."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from parley.rtc import CallClient
from server.app import MODELS, create_app
from server.config import Settings
from server.providers.base import ProviderError
from server.providers.registry import api_key, verify
from tests.fake_openai import FakeOpenAI

SHARED = "sk-openai-shared-key-0000"
STT_KEY, LLM_KEY = "sk-stt-only-1111", "sk-llm-only-2222"


def test_which_key_each_endpoint_gets():
    env = {"OPENAI_API_KEY": SHARED}

    def key(stage_url: str = "", own: str = "", **extra) -> str | None:
        settings = Settings(llm_base_url=stage_url, llm_api_key=own, **extra)
        return api_key(settings, "llm", env)

    assert key() == SHARED  # no base URL of its own: the SDK's default endpoint (OpenAI or OPENAI_BASE_URL)
    assert key("https://api.openai.com/v1") == SHARED
    assert key("https://api.openai.com:443/v1") == SHARED
    for elsewhere in (
        "http://api.openai.com/v1",
        "https://api.openai.com.example.net/v1",
        "https://llm.example/v1",
        "http://127.0.0.1:8000/v1",
        "https://api.openai.com:8443/v1",
        "https://api.openai.com:x/v1",
    ):
        assert key(elsewhere) is None, elsewhere
    assert key("https://llm.example/v1", share_openai_key=True) == SHARED  # the operator says so
    assert key("https://llm.example/v1", own=LLM_KEY) == LLM_KEY
    assert key(own=LLM_KEY) == LLM_KEY  # a stage's own key wins everywhere
    assert api_key(Settings(), "llm", {}) is None


def test_keys_stay_out_of_the_settings_repr():
    settings = Settings(stt_api_key=STT_KEY, llm_api_key=LLM_KEY, tts_api_key="sk-tts")
    assert STT_KEY not in repr(settings) and LLM_KEY not in repr(settings) and "sk-tts" not in repr(settings)
    from_env = Settings.from_env({"PARLEY_STT_API_KEY": STT_KEY, "PARLEY_SHARE_OPENAI_KEY": "1"})
    assert from_env.stt_api_key == STT_KEY and from_env.share_openai_key


@pytest.fixture
async def fake_servers():
    # The speech stage's server takes its own key, the chat stage's its own; the voice's wants none (a local
    # speech server), so it gets the SDK's placeholder.
    servers = [await FakeOpenAI(key=k).start() for k in (STT_KEY, LLM_KEY, "unused")]
    yield servers
    for server in servers:
        await server.close()


async def test_each_stage_key_reaches_only_its_own_endpoint(fake_servers, monkeypatch):
    stt_fake, llm_fake, tts_fake = fake_servers
    monkeypatch.setenv("OPENAI_API_KEY", SHARED)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    settings = Settings(
        stt="openai", llm="openai", tts="openai", ice_loopback=True, hangover_ms=500,
        stt_base_url=stt_fake.base_url, llm_base_url=llm_fake.base_url, tts_base_url=tts_fake.base_url,
        stt_api_key=STT_KEY, llm_api_key=LLM_KEY,
    )  # fmt: skip
    app = create_app(settings)  # the real providers: the start-up check, then a call
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    call = CallClient(str(server.make_url("")).rstrip("/"), mode="chat")
    try:
        await asyncio.wait_for(app[MODELS].loaded.wait(), 20)
        assert app[MODELS].error is None, app[MODELS].error
        await call.connect()
        greeted = await call.wait_listening(30)
        call.send({"type": "text", "text": "hi there"})
        await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 20, greeted)
        assert await app[MODELS].providers.stt.transcribe(np.zeros(16_000, np.float32), "en") == "hello from the fake"
    finally:
        await call.close()
        await server.close()
    assert stt_fake.seen.transcriptions and llm_fake.seen.chats and tts_fake.seen.speech  # every stage was used
    assert set(stt_fake.seen.keys) == {f"Bearer {STT_KEY}"}
    assert set(llm_fake.seen.keys) == {f"Bearer {LLM_KEY}"}
    assert set(tts_fake.seen.keys) == {"Bearer unused"}  # OPENAI_API_KEY is for OpenAI, not this server


async def test_the_openai_key_goes_to_another_endpoint_when_the_operator_shares_it(fake_servers, monkeypatch):
    shared_fake = await FakeOpenAI(key=SHARED).start()
    fake_servers.append(shared_fake)
    monkeypatch.setenv("OPENAI_API_KEY", SHARED)
    for share in (False, True):
        settings = Settings(tts="openai", tts_base_url=shared_fake.base_url, share_openai_key=share)
        with contextlib.suppress(ProviderError):  # refused without the key
            await verify(settings)  # the start-up check: GET /v1/models with the stage's key
    assert shared_fake.seen.keys == ["Bearer unused", f"Bearer {SHARED}"]
