"""Barge-in in real calls: the bot stops for a person talking over it, and neither its own echo nor noise,
music or laughter stops it. The bot speaks real speech (Piper) where its echo matters."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
import pytest

from parley.audio import read_wav
from parley.rtc import CallClient
from server.providers.base import Providers
from tests.fakes import FakeLLM, FakeSTT, FakeTTS, fake_providers
from tests.helpers import chat_call, is_, shared_clip

REPLY = (
    "Let me explain this slowly and carefully. A process owns its memory and its resources. "
    "A thread runs inside a process and shares that memory with the other threads. "
    "That is why threads are cheaper to start but need locks."
)
NONSPEECH = ["noise_koala", "esc50_thunderstorm", "esc50_car_horn", "music_vibe_ace_10s", "bird_robin", "laughter"]


def interruptions(call: CallClient, after: float) -> list[dict]:
    return [e for t, e in call.events if t >= after and (e["type"] == "interrupted" or is_("speech", event="start")(e))]


@pytest.mark.parametrize("echo_db", [-20, -10])
async def test_the_bots_own_echo_does_not_interrupt_it(start_server, call_client, piper, echo_db):
    # Loudspeakers and no echo cancellation: what the client hears comes back into its microphone 150 ms later.
    providers = Providers(stt=FakeSTT("unused"), llm=FakeLLM(REPLY), tts=piper)
    call, greeted = await chat_call(start_server, call_client, providers, echo_gain=10 ** (echo_db / 20))
    call.send({"type": "text", "text": "tell me about threads"})
    _, said = await call.wait_for(is_("transcript", role="assistant"), 40, greeted)
    assert said == {"type": "transcript", "role": "assistant", "text": REPLY, "interrupted": False}
    assert interruptions(call, 0) == []
    # Nor did it pause mid-sentence for a possible interruption (a stutter the person would hear).
    async with aiohttp.ClientSession() as http, http.get(f"{call.url}/metrics") as resp:
        assert "parley_false_starts_total 0.0" in await resp.text()


async def test_a_person_talking_over_the_bot_and_its_echo_still_interrupts_it(
    start_server, call_client, piper, tts_speech, silence
):
    providers = Providers(stt=FakeSTT("wait"), llm=FakeLLM(REPLY, "Sure."), tts=piper)
    call, greeted = await chat_call(start_server, call_client, providers, echo_gain=10 ** (-20 / 20))
    call.send({"type": "text", "text": "tell me about threads"})
    speaking_t, _ = await call.wait_for(is_("state", state="speaking"), 20, greeted)
    await call.wait_for(is_("transcript", role="user"), 5, greeted)
    await asyncio.sleep(2.0)
    call.mic.play(np.concatenate([tts_speech("Wait, I know this one."), silence(1.0)]))
    _, interrupted = await call.wait_for(is_("interrupted"), 10, speaking_t)
    assert interrupted["heard"] and len(interrupted["heard"]) < len(REPLY)
    # The bot's audio stopped while the person spoke: nothing loud from 300 ms after their first word
    # until the reply to them (their own echo comes back 20 dB down, under the -45 dBFS line only partly).
    onset = call.mic.play_started_at
    assert onset is not None
    reply_t, _ = await call.wait_for(is_("state", state="speaking"), 20, onset)
    late = [a for a, lv in zip(call.recording.arrivals, call.recording.levels, strict=True)
            if onset + 0.3 < a < reply_t and lv > -45]  # fmt: skip
    assert late == [], f"bot audio went on {late[-1] - onset:.2f} s after the person began"


@pytest.mark.shared_audio
async def test_noise_music_and_laughter_do_not_interrupt_the_bot(start_server, call_client, silence):
    clips = {name: read_wav(shared_clip(f"nonspeech/{name}_48k.wav")) for name in NONSPEECH}
    long_reply = " ".join(["This reply goes on for a while so that a sound can be played over it."] * 8)
    llm = FakeLLM(*([long_reply] * len(clips)))
    call, greeted = await chat_call(start_server, call_client, fake_providers(FakeSTT("unused"), llm, FakeTTS()))
    interrupted_by = []
    for name, clip in clips.items():
        sent_t = time.monotonic()
        call.send({"type": "text", "text": f"talk while I play {name}"})
        await call.wait_for(is_("state", state="speaking"), 10, sent_t)
        call.mic.play(np.concatenate([clip, silence(0.5)]))
        await call.mic.finished.wait()
        if interruptions(call, sent_t):
            interrupted_by.append(name)
        call.send({"type": "reset"})  # the next clip gets a fresh reply
        await call.wait_listening(after=time.monotonic())
    assert interrupted_by == []
