"""Turn end beyond silence: words that trail off give the person's pause more time; a finished sentence
does not. Scripted transcripts over real calls, and the rule itself."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pytest

from server.audio.vad import WINDOW_MS, SpeechDetector, VadEventKind
from server.config import Settings
from server.dialogue.turn_end import Limits, TurnEnd
from server.dialogue.unfinished import looks_unfinished
from tests.fakes import FakeLLM, FakeSTT, fake_providers
from tests.helpers import chat_call, is_


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The main difference is that", "en"),
        ("I would use a hash map because", "en"),
        ("So first you,", "en"),
        ("I think it's um...", "en"),
        ("Yo creo que", "es"),
        ("Je pense que", "fr"),
        ("Ich glaube, dass", "de"),
        ("私は…", "ja"),
    ],
)
def test_trailing_words_sound_unfinished(text: str, language: str):
    assert looks_unfinished(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("A process has its own memory.", "en"),
        ("What is a deadlock?", "en"),
        ("Where are you from?", "en"),
        ("I think so.", "en"),
        ("I like that.", "en"),
        ("That is it.", "en"),
        ("Me gusta mucho viajar.", "es"),
        ("C'est une bonne question.", "fr"),
        ("我喜欢学习中文。", "zh"),
        ("", "en"),
    ],
)
def test_finished_sentences_do_not(text: str, language: str):
    assert not looks_unfinished(text, language)


def test_an_extension_lasts_for_the_current_silence_only():
    detector = SpeechDetector(hangover_ms=320)
    events = [e.kind for p in [0.9] * 5 + [0.0] * 4 if (e := detector.update(p))]
    assert events == [VadEventKind.ONSET, VadEventKind.START, VadEventKind.PAUSE]
    detector.extend(640)
    # 4 quiet windows so far; the turn now ends after 320 + 640 ms of silence, not 320.
    ends = [i for i in range(40) if (e := detector.update(0.0)) and e.kind is VadEventKind.END]
    assert ends == [(320 + 640) // WINDOW_MS - 4 - 1]
    # The next silence has the plain hang-over again.
    windows = [0.9] * 5 + [0.0] * 20
    ends = [i for i, p in enumerate(windows) if (e := detector.update(p)) and e.kind is VadEventKind.END]
    assert ends == [5 + 320 // WINDOW_MS - 1]


class PartSTT(FakeSTT):
    """Transcribes by length: audio no longer than the first part (and its trailing quiet) is the first part."""

    def __init__(
        self, first_text: str, first_seconds: float, whole: str = "so I think that threads share memory"
    ) -> None:
        super().__init__(first_text, whole)
        self.first_seconds = first_seconds

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        self.calls.append((audio.size / 16_000, language))
        return self.texts[0] if audio.size / 16_000 < self.first_seconds + 0.6 else self.texts[1]


async def spoken_with_pause(start_server, call_client, tts_speech, silence, first_text: str):
    first, second = tts_speech("So I think that"), tts_speech("threads share memory.")
    stt = PartSTT(first_text, first.size / 48_000)
    llm = FakeLLM("Right.", "Right.")
    call, greeted = await chat_call(start_server, call_client, fake_providers(stt, llm))  # hang-over 500 ms
    call.mic.play(np.concatenate([first, silence(0.9), second, silence(2.5)]))
    await call.mic.finished.wait()
    await call.wait_for(is_("state", state="listening"), 10, greeted)
    return [e["text"] for t, e in call.events if t > greeted and e["type"] == "transcript" and e["role"] == "user"]


async def test_a_thinking_pause_after_unfinished_words_does_not_end_the_turn(
    start_server, call_client, tts_speech, silence
):
    users = await spoken_with_pause(start_server, call_client, tts_speech, silence, "So I think that...")
    assert users == ["so I think that threads share memory"]


async def test_the_same_pause_after_a_finished_sentence_ends_it(start_server, call_client, tts_speech, silence):
    users = await spoken_with_pause(start_server, call_client, tts_speech, silence, "So I think that is it.")
    assert users[0] == "So I think that is it."


@pytest.mark.parametrize(("mode", "cut"), [("chat", True), ("interview", False)])
async def test_each_mode_waits_its_own_hang_over(start_server, call_client, tts_speech, silence, mode, cut):
    # No PARLEY_HANGOVER_MS and no end-of-turn model: chat ends a turn after 700 ms of silence, an interview answer
    # after 1300 ms.
    first, second = tts_speech("So I think that"), tts_speech("threads share memory.")
    stt = PartSTT("So I think that is it.", first.size / 48_000)
    settings = Settings(ice_loopback=True, turn_model="off")
    url = await start_server(fake_providers(stt, FakeLLM("Right.", "Right.")), settings)
    call = await call_client(url, mode=mode)
    greeted = await call.wait_listening()
    call.mic.play(np.concatenate([first, silence(0.9), second, silence(2.5)]))
    await call.mic.finished.wait()
    await call.wait_for(is_("state", state="listening"), 10, greeted)
    users = [e["text"] for t, e in call.events if t > greeted and e["type"] == "transcript" and e["role"] == "user"]
    assert (users[0] == "So I think that is it.") is cut, users


async def test_the_end_of_turn_model_hears_a_voice_that_is_not_done(start_server, call_client, tts_speech, silence):
    # The real model (Smart Turn v3) on the real call path: the words "And then I would" are transcribed as a
    # finished sentence, so only the voice can tell that the person is not done; the chat hang-over is 700 ms.
    # (The model's verdict on a voice depends on the few hundred ms of silence after it: this phrase is heard as
    # not done with any of them, "So I think that" only with most.)
    first, second = tts_speech("And then I would"), tts_speech("use a hash map.")
    stt = PartSTT("And then I would use it.", first.size / 48_000, "and then I would use a hash map")
    settings = Settings(ice_loopback=True, turn_model="on")
    url = await start_server(fake_providers(stt, FakeLLM("Right.", "Right.")), settings)
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening()
    call.mic.play(np.concatenate([first, silence(0.9), second, silence(3.5)]))
    await call.mic.finished.wait()
    await call.wait_for(is_("state", state="listening"), 10, greeted)
    users = [e["text"] for t, e in call.events if t > greeted and e["type"] == "transcript" and e["role"] == "user"]
    assert users == ["and then I would use a hash map"]


class Recorded:
    """The limits a TurnEnd set on the silence, last one last."""

    def __init__(self) -> None:
        self.limits: list[int] = []

    def limit_silence(self, limit_ms: int) -> None:
        self.limits.append(limit_ms)


CHAT = Limits(hangover=700, complete=700, incomplete=2500, unfinished_extra=600)


@pytest.mark.parametrize(("verdict", "limit"), [(0.9, 700), (0.1, 2500), (None, 700)])
def test_the_silence_waits_for_a_late_verdict_then_takes_its_limit(verdict: float | None, limit: int):
    # On a busy machine the model may answer after the hang-over: the turn does not end on silence alone before
    # it has; a model that fails gives the hang-over back.
    silence = Recorded()
    turn_end = TurnEnd(silence, CHAT, has_model=True)
    assert silence.limits == [2500]
    turn_end.model_says(verdict)
    assert silence.limits[-1] == limit


def test_words_that_trail_off_outweigh_a_complete_voice_and_stale_verdicts_change_nothing():
    silence = Recorded()
    turn_end = TurnEnd(silence, CHAT, has_model=True)
    turn_end.model_says(0.9)
    turn_end.words_say(True)
    assert silence.limits[-1] == 2500
    turn_end.over()
    turn_end.model_says(0.9)
    assert len(silence.limits) == 3


def test_without_a_model_only_the_words_count():
    silence = Recorded()
    turn_end = TurnEnd(silence, CHAT, has_model=False)
    assert silence.limits == []  # the hang-over, as the detector has it
    turn_end.words_say(True)
    assert silence.limits == [700 + 600]
