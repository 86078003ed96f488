"""Listening ahead: the words said so far reach the chat model's cache while the person talks; the turn itself
is still transcribed whole, and a stale guess never reaches the reply."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import numpy as np
import pytest

from server.dialogue.ahead import ListeningAhead, listens_ahead
from tests.fakes import FakeLLM, FakeSTT, fake_providers
from tests.helpers import chat_call, is_, until

RATE = 16_000
SENTENCE = "I went hiking in the mountains with my sister last weekend."


class Script:
    """Transcribes by length (the first words of SENTENCE, one more per ``word_s``) and records prefills."""

    def __init__(self, prefill_delay: float = 0.0, fail: bool = False, word_s: float = 0.3) -> None:
        self.prefill_delay = prefill_delay
        self.word_s = word_s
        self.fail = fail
        self.heard: list[float] = []
        self.prefilled: list[str] = []
        self.prefilling = 0  # prefills begun
        self.cancelled = 0

    async def transcribe(self, audio: np.ndarray) -> str:
        self.heard.append(audio.size / RATE)
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("model crashed")
        return " ".join(SENTENCE.split()[: int(audio.size / RATE / self.word_s)])

    async def prefill(self, text: str) -> None:
        self.prefilling += 1
        try:
            await asyncio.sleep(self.prefill_delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.prefilled.append(text)


async def speak(ahead: ListeningAhead, seconds: float, window_s: float = 0.032) -> None:
    """Calls ``heard`` as the call does, once per window, while the person keeps talking."""
    for i in range(1, int(seconds / window_s) + 1):
        samples = int(i * window_s * RATE)
        ahead.heard(samples, lambda n=samples: np.zeros(n, np.float32))
        await asyncio.sleep(0.002)


def spawn(coro):
    return asyncio.get_running_loop().create_task(coro)


async def test_words_so_far_are_read_ahead_without_the_last_one_which_may_be_cut():
    script = Script()
    ahead = ListeningAhead(script.transcribe, script.prefill, spawn)
    await speak(ahead, 3.2)
    await until(lambda: not ahead.busy)
    # A partial transcript once a second of speech; three words say too little to read ahead, and the last
    # word is left out (it may be cut).
    assert [round(s) for s in script.heard] == [1, 2, 3]
    assert script.prefilled == ["I went hiking in the", "I went hiking in the mountains with my sister"]
    assert all(SENTENCE.startswith(text) for text in script.prefilled)


async def test_a_pause_stops_reading_ahead_at_once_and_speech_after_it_starts_again():
    script = Script(prefill_delay=5.0, word_s=0.2)
    ahead = ListeningAhead(script.transcribe, script.prefill, spawn)
    await speak(ahead, 1.2)
    await until(lambda: script.prefilling == 1)
    assert ahead.busy  # still reading "I went hiking in" when the person falls quiet
    ahead.pause()
    await asyncio.sleep(0)
    assert script.cancelled == 1 and not ahead.busy
    assert len(script.heard) == 1  # nothing new starts while it is stopped
    script.prefill_delay = 0.0
    await speak(ahead, 2.5)  # the person goes on: the next partial comes with the next second of speech
    await until(lambda: not ahead.busy)
    assert script.prefilled and len(script.heard) == 2


async def test_only_one_partial_at_a_time():
    script = Script(prefill_delay=1.5, word_s=0.2)
    ahead = ListeningAhead(script.transcribe, script.prefill, spawn)
    await speak(ahead, 2.4)
    assert len(script.heard) == 1  # the second second of speech came while the first was still being read


async def test_a_failing_partial_is_only_logged(caplog):
    script = Script(fail=True)
    ahead = ListeningAhead(script.transcribe, script.prefill, spawn)
    await speak(ahead, 2.1)
    await until(lambda: not ahead.busy)
    assert len(script.heard) == 2 and not script.prefilled
    assert "reading ahead failed" in caplog.text


@pytest.mark.parametrize(
    ("setting", "reads_ahead", "stt", "expected"),
    [
        ("auto", True, "local", True),
        ("auto", False, "local", False),  # a remote chat model: no cache of ours to fill
        ("auto", True, "openai", False),  # remote partial transcripts would be paid for
        ("on", False, "openai", True),
        ("off", True, "local", False),
    ],
)
def test_when_it_listens_ahead(setting, reads_ahead, stt, expected):
    assert listens_ahead(setting, reads_ahead, stt) is expected


class GrowingSTT(FakeSTT):
    """Whole utterance: SENTENCE; anything shorter: its first words, one per 0.3 s of audio."""

    def __init__(self, whole_seconds: float) -> None:
        super().__init__(SENTENCE)
        self.whole_seconds = whole_seconds

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        seconds = audio.size / RATE
        self.calls.append((seconds, language))
        await asyncio.sleep(0.05)
        if seconds >= self.whole_seconds:
            return SENTENCE
        return " ".join(SENTENCE.split()[: int(seconds / 0.3)])


@pytest.mark.parametrize("reads_ahead", [True, False])
async def test_over_a_real_call_the_model_reads_ahead_and_the_turn_is_still_the_whole_utterance(
    start_server, call_client, tts_speech, silence, reads_ahead
):
    speech = tts_speech(SENTENCE)
    stt = GrowingSTT(whole_seconds=speech.size / 48_000)
    llm = FakeLLM("Sounds lovely.")
    llm.reads_ahead = reads_ahead
    call, greeted = await chat_call(start_server, call_client, fake_providers(stt, llm))
    call.mic.play(np.concatenate([speech, silence(1.5)]))
    await call.wait_for(is_("transcript", role="user", text=SENTENCE), 15, greeted)
    await call.wait_for(is_("state", state="listening"), 15, greeted)

    # The turn the person hears answered, and the history, hold the whole utterance, never a partial.
    assert llm.requests[-1][-1]["content"] == SENTENCE
    users = [e["text"] for t, e in call.events if t > greeted and e["type"] == "transcript" and e["role"] == "user"]
    assert users == [SENTENCE]
    if not reads_ahead:
        assert llm.prefills == [] and len(stt.calls) == 1
        return
    # While they spoke: partial transcripts, and the model given the conversation plus the words so far.
    assert len(stt.calls) >= 2 and llm.prefills
    for prefill in llm.prefills:
        assert prefill[:-1] == llm.requests[-1][:-1]  # the same history the turn is answered with
        assert SENTENCE.startswith(prefill[-1]["content"]) and prefill[-1]["content"] != SENTENCE
