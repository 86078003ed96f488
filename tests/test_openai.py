"""The OpenAI-compatible providers against a local server that speaks the API, faults included."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from parley.rtc import CallClient
from server.app import MODELS, create_app
from server.config import Settings
from server.providers.base import ProviderError, VoiceStyle
from server.providers.openai_compat import Endpoint, OpenAIChat, OpenAISTT, OpenAITTS
from tests.fake_openai import KEY, FakeOpenAI


@pytest.fixture
async def fake():
    server = await FakeOpenAI().start()
    yield server
    await server.close()


def endpoint(fake: FakeOpenAI, model: str, **kw) -> Endpoint:
    return Endpoint(model=model, base_url=fake.base_url, api_key=kw.pop("api_key", KEY), **kw)


async def test_transcription_uploads_a_wav_with_the_language(fake):
    stt = OpenAISTT(endpoint(fake, "whisper-1"))
    assert await stt.transcribe(np.zeros(16_000, dtype=np.float32), "fr") == "hello from the fake"
    assert fake.seen.transcriptions == [{"model": "whisper-1", "language": "fr", "bytes": 32_044, "wav": True}]


async def test_transcription_with_other_languages_possible_lets_the_server_detect(fake):
    stt = OpenAISTT(endpoint(fake, "whisper-1"))
    await stt.transcribe(np.zeros(16_000, dtype=np.float32), "en", languages=("en", "fr"))
    assert fake.seen.transcriptions[-1]["language"] is None  # no hint: chat follows the person's language


async def test_rate_limit_then_success_is_retried(fake):
    fake.faults.statuses = [429]
    stt = OpenAISTT(endpoint(fake, "whisper-1"))
    assert await stt.transcribe(np.zeros(8_000, dtype=np.float32), "en") == "hello from the fake"
    assert fake.seen.requests.count("/v1/audio/transcriptions") == 2


async def test_server_errors_end_in_a_clear_error_after_bounded_retries(fake):
    fake.faults.statuses = [500, 502, 503, 500]
    chat = OpenAIChat(endpoint(fake, "gpt-4o-mini", max_retries=2))
    with pytest.raises(ProviderError, match=r"language model: the endpoint failed \(HTTP 50\d\)"):
        _ = [d async for d in chat.stream([{"role": "user", "content": "hi"}], temperature=0.9, max_tokens=10)]
    assert fake.seen.requests.count("/v1/chat/completions") == 3


async def test_a_slow_endpoint_times_out(fake):
    fake.faults.delay_s = 2.0
    stt = OpenAISTT(endpoint(fake, "whisper-1", timeout_s=0.3, max_retries=0))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="took too long"):
        await stt.transcribe(np.zeros(8_000, dtype=np.float32), "en")
    assert time.monotonic() - started < 1.5


async def test_a_wrong_key_is_named_and_never_shown(fake):
    wrong = "sk-wrong-key-that-must-not-leak"
    stt = OpenAISTT(endpoint(fake, "whisper-1", api_key=wrong))
    with pytest.raises(ProviderError, match="refused the API key") as caught:
        await stt.transcribe(np.zeros(8_000, dtype=np.float32), "en")
    assert wrong not in str(caught.value)


async def test_speech_streams_audio_before_the_sentence_is_synthesized(fake):
    tts = OpenAITTS(endpoint(fake, "gpt-4o-mini-tts"))
    style = VoiceStyle(voice="nova", instructions="Speak slowly.", language="es")
    arrivals, samples = [], 0
    async for chunk in tts.synthesize("one two three four five six seven eight nine ten", style):
        arrivals.append(time.monotonic())
        samples += chunk.pcm.size
        assert chunk.rate == 24_000 and chunk.pcm.dtype.itemsize == 2
    assert len(arrivals) > 3 and arrivals[-1] - arrivals[0] > 0.05  # streamed, not all at once
    assert abs(samples / 24_000 - 0.8) < 0.01  # every sample arrived, none lost at odd chunk edges
    assert fake.seen.speech[0] == {"model": "gpt-4o-mini-tts", "voice": "nova", "input":
                                   "one two three four five six seven eight nine ten", "response_format": "pcm",
                                   "instructions": "Speak slowly."}  # fmt: skip


async def test_a_cut_off_speech_stream_is_an_error_and_not_retried(fake):
    fake.faults.cut_after_bytes = 9_602
    tts = OpenAITTS(endpoint(fake, "gpt-4o-mini-tts"))
    got = 0
    with pytest.raises(ProviderError, match="cut off|failed"):
        async for chunk in tts.synthesize("a sentence long enough to be cut off in the middle", VoiceStyle()):
            got += chunk.pcm.size
    assert got > 0 and fake.seen.requests.count("/v1/audio/speech") == 1  # audio had started: no retry


async def test_a_cut_off_chat_stream_is_a_provider_error_and_not_retried(fake):
    fake.faults.cut_after_bytes = 80  # two words, then the connection drops (a replica killed mid-reply)
    chat = OpenAIChat(endpoint(fake, "gpt-4o-mini"))
    got = []
    with pytest.raises(ProviderError, match="the language model: the reply was cut off"):
        async for delta in chat.stream([{"role": "user", "content": "hi"}], temperature=0.5, max_tokens=50):
            got.append(delta)
    assert got and fake.seen.requests.count("/v1/chat/completions") == 1  # words had arrived: no retry


def remote_settings(fake: FakeOpenAI, key: str = KEY, **overrides) -> Settings:
    """Every stage on ``fake``, each with ``key`` as its own (OPENAI_API_KEY does not go to a third party's URL)."""
    values: dict[str, object] = {f"{stage}_base_url": fake.base_url for stage in ("stt", "llm", "tts")}
    values.update({f"{stage}_api_key": key for stage in ("stt", "llm", "tts")})
    values.update(stt="openai", llm="openai", tts="openai", ice_loopback=True, hangover_ms=500)
    values.update(overrides)
    return Settings(**values)


async def health(app_settings: Settings) -> tuple[str | None, TestServer]:
    app = create_app(app_settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await asyncio.wait_for(app[MODELS].loaded.wait(), 20)
    return app[MODELS].error, server


@pytest.mark.parametrize(
    ("key", "overrides", "words"),
    [("sk-wrong", {}, "refused the API key"), (KEY, {"llm_model": "gpt-9"}, "no model 'gpt-9'")],
)
async def test_start_up_check_names_a_wrong_key_or_model(fake, monkeypatch, key, overrides, words):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    error, server = await health(remote_settings(fake, key, **overrides))
    try:
        assert error is not None and words in error and key not in error
        health_answer = await get(server, "/healthz")
        assert health_answer.status == 503 and words in (await health_answer.json())["error"]
    finally:
        await server.close()


async def test_a_call_on_remote_providers_and_the_key_stays_secret(fake, monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    error, server = await health(remote_settings(fake))
    assert error is None
    call = CallClient(str(server.make_url("")).rstrip("/"), mode="chat")
    try:
        await call.connect()
        greeted = await call.wait_listening(30)
        call.send({"type": "text", "text": "hi there"})
        _, said = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 20, greeted)
        assert said["text"] == "Hello there. How are you today?"
        assert call.recording.first_loud_after(greeted) is not None
        chat = fake.seen.chats[-1]
        assert (chat["model"], chat["temperature"], chat["max_tokens"]) == ("gpt-4o-mini", 0.9, 150)
        assert {s["voice"] for s in fake.seen.speech} == {"shimmer"}  # the chat mode's voice
        page = await (await get(server, "/")).text()
    finally:
        await call.close()
        await server.close()
    assert KEY not in str(call.events) and KEY not in page
    assert KEY not in caplog.text


async def get(server: TestServer, path: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(server.make_url(path))
        await resp.read()  # the body stays readable after the session closes
        return resp


async def test_a_failing_remote_model_is_reported_with_a_spoken_apology(fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    error, server = await health(remote_settings(fake, max_retries=0))
    assert error is None
    call = CallClient(str(server.make_url("")).rstrip("/"), mode="chat")
    try:
        await call.connect()
        greeted = await call.wait_listening(30)
        fake.faults.statuses = [500]
        call.send({"type": "text", "text": "are you there?"})
        _, err = await call.wait_for(lambda e: e["type"] == "error", 10, greeted)
        assert err["code"] == "provider_failed" and "HTTP 500" in err["message"]
        sorry_t, _ = await call.wait_for(
            lambda e: e["type"] == "transcript" and e["text"].startswith("Sorry"), 10, greeted
        )
        await call.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening", 10, sorry_t)
        call.send({"type": "text", "text": "and now?"})
        _, said = await call.wait_for(
            lambda e: e["type"] == "transcript" and e["text"] == "Hello there. How are you today?", 10, sorry_t
        )
    finally:
        await call.close()
        await server.close()
