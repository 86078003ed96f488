"""Whole calls over real WebRTC (aiortc on both sides, loopback) with scripted model stages."""

from __future__ import annotations

import numpy as np

from tests.fakes import FakeLLM, FakeSTT, FakeTTS, fake_providers

QUESTION = "What is the difference between a process and a thread?"


def is_(kind: str, **fields: object):
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


async def test_spoken_turn_is_heard_and_answered(start_server, call_client, tts_speech, silence):
    stt = FakeSTT("what is a thread")
    llm = FakeLLM("A thread shares memory with its process. Want another question?")
    url = await start_server(fake_providers(stt, llm))
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening()

    speech = tts_speech(QUESTION)
    call.mic.play(np.concatenate([speech, silence(1.5)]))
    start_t, _ = await call.wait_for(is_("speech", event="start"), 10, greeted)
    end_t, _ = await call.wait_for(is_("speech", event="end"), 10, start_t)
    await call.wait_for(is_("transcript", role="user", text="what is a thread"), 10, end_t)
    _, metrics = await call.wait_for(is_("metrics", turn=1), 10, end_t)
    _, said = await call.wait_for(is_("transcript", role="assistant"), 20, end_t)

    # The detector heard the whole question: the audio handed to STT is about as long as the speech.
    heard_seconds = stt.calls[0][0]
    assert abs(heard_seconds - speech.size / 48_000) < 0.8, heard_seconds
    assert said["text"] == "A thread shares memory with its process. Want another question?"
    assert metrics["stt_ms"] is not None and metrics["response_ms"] > 0
    # The reply was audible at the client after the person stopped talking.
    assert call.recording.first_loud_after(end_t) is not None
