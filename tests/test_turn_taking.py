"""Turn-taking on scripted speech, without WebRTC or model files (tests/scripted.py): the events of a turn in
order, speculation at a pause, the barge-in hold, release and confirmation, and the unfinished-turn extension.
Real calls over aiortc are in test_call.py and test_barge_in.py."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from server.audio.vad import WINDOW_MS
from server.config import Settings
from server.dialogue.turn_taking import TurnHooks
from server.session import Call
from server.turn_options import TurnOptions
from tests.fakes import FakeLLM, FakeSTT
from tests.scripted import (
    HANGOVER_WINDOWS,
    LONG_REPLY,
    QUIET,
    SPEECH,
    ScriptedCall,
    ScriptedTurnModel,
    connected,
    listening,
)


async def test_a_spoken_turn_gives_its_events_in_order():
    stt, llm = FakeSTT("what is a thread"), FakeLLM("A thread shares its memory.")
    call = await connected(stt, llm)
    greeting = call.kinds()  # a caption per sentence as it starts playing
    assert greeting[:3] == ["ready", "caption:assistant", "state:speaking"]
    assert greeting[-2:] == ["transcript:assistant", "state:listening"]
    since = len(call.events)
    call.hear([QUIET] * 5 + [SPEECH] * 20 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(listening(call, since))
    assert call.kinds(since) == [
        "speech:start", "speech:end", "state:thinking", "transcript:user", "caption:assistant", "state:speaking",
        "metrics", "transcript:assistant", "state:listening",
    ]  # fmt: skip
    metrics = next(e for e in call.events if e["type"] == "metrics")
    assert metrics["turn"] == 1 and metrics["stt_ms"] is not None and metrics["response_ms"] > 0
    # Whisper got the pre-roll, the speech and one quiet window.
    assert stt.calls == [((5 + 20 + 1) * WINDOW_MS / 1000, "en")]
    assert llm.requests[-1][-1] == {"role": "user", "content": "what is a thread"}
    assert call.loud_frames > 0
    await call.close()


async def test_typed_text_is_answered_like_speech():
    call = await connected(llm=FakeLLM("Typed questions work too."))
    since = len(call.events)
    call.call._on_message('{"type": "text", "text": "  Can you read this?  "}')
    await call.play_until(listening(call, since))
    assert call.kinds(since) == [
        "state:thinking", "transcript:user", "caption:assistant", "state:speaking", "metrics",
        "transcript:assistant", "state:listening",
    ]  # fmt: skip
    assert call.events[since + 1]["text"] == "Can you read this?"
    assert next(e for e in call.events[since:] if e["type"] == "metrics")["stt_ms"] is None
    await call.close()


async def test_the_reply_started_in_a_pause_is_dropped_when_the_person_goes_on():
    stt = FakeSTT("I think", "I think threads share memory")
    llm = FakeLLM("That is right.")
    call = await connected(stt, llm)
    since = len(call.events)
    call.hear([SPEECH] * 10 + [QUIET] * 5)  # a pause (96 ms): the reply starts
    await call.settle(lambda: len(stt.texts) == 1)  # ... and has its transcript
    call.hear([SPEECH] * 10 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(listening(call, since))
    users = [e["text"] for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "user"]
    assert users == ["I think threads share memory"]
    assert [m["content"] for m in llm.requests[-1] if m["role"] == "user"] == ["I think threads share memory"]
    assert [k for k in call.kinds(since) if k.startswith("speech")] == ["speech:start", "speech:end"]
    assert stt.calls[-1][0] > stt.calls[0][0]
    assert call.counter("parley_speculations_dropped_total") == 1
    await call.close()


async def speaking(llm: FakeLLM) -> tuple[ScriptedCall, int]:
    """A call whose bot is half a second into a long reply."""
    call = await connected(FakeSTT("wait, I know this one"), llm)
    since = len(call.events)
    call.call._on_message('{"type": "text", "text": "tell me about threads"}')
    await call.play_until(lambda: "state:speaking" in call.kinds(since))
    for _ in range(25):
        call.frame()
    return call, len(call.events)


async def test_the_bot_is_held_at_the_first_speech_window_and_stopped_when_speech_is_confirmed():
    llm = FakeLLM(LONG_REPLY, "Oh, sorry, go ahead.")
    call, since = await speaking(llm)
    call.hear([SPEECH])
    assert call.call.track.held and not np.abs(call.frame()).any()  # the very next frame is silence
    call.hear([SPEECH] * 6)
    assert call.call.track.held and "speech:start" not in call.kinds(since)
    call.hear([SPEECH])  # the eighth window: a person, talking over the bot
    assert call.kinds(since)[:1] == ["speech:start"]
    # Still held, not yet cut: a backchannel ("mm-hm") would let the bot go on. At the pause their words are
    # transcribed: "wait, I know this one" takes the floor.
    assert call.call.track.held and not np.abs(call.frame()).any() and "interrupted" not in call.kinds(since)
    call.hear([QUIET] * 4)
    await call.settle(lambda: "transcript:assistant" in call.kinds(since))
    interrupted = next(e for e in call.events[since:] if e["type"] == "interrupted")
    said = next(e for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "assistant")
    assert said == {"type": "transcript", "role": "assistant", "text": interrupted["heard"], "interrupted": True}
    assert interrupted["heard"] and LONG_REPLY.startswith(interrupted["heard"])
    assert call.kinds(since)[1:3] == ["interrupted", "transcript:assistant"]
    call.hear([SPEECH] * 10 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(listening(call, since))
    assert llm.requests[-1][-2:] == [
        {"role": "assistant", "content": interrupted["heard"]},
        {"role": "user", "content": "[INTERRUPTED] wait, I know this one"},
    ]
    assert call.counter("parley_barge_ins_total") == 1
    await call.close()


async def test_a_laugh_over_the_bot_holds_it_for_a_moment_then_it_goes_on_from_the_same_word():
    call, since = await speaking(FakeLLM(LONG_REPLY))
    call.hear([SPEECH] * 6 + [QUIET] * 9)  # 192 ms of laughter: the grace (320 ms) runs from its drop
    assert call.call.track.held
    call.hear([QUIET] * 2)
    assert not call.call.track.held
    loud = call.loud_frames
    await call.play_until(lambda: call.loud_frames > loud)  # the reply goes on
    assert [k for k in call.kinds(since) if k != "caption:assistant"] == []  # neither stopped nor interrupted
    assert call.counter("parley_false_starts_total") == 1
    await call.close()


class AnsweredSTT(FakeSTT):
    """Counts the transcripts it has handed back."""

    answered = 0

    async def transcribe(self, audio: np.ndarray, language: str, **kwargs) -> str:
        text = await super().transcribe(audio, language, **kwargs)
        self.answered += 1  # the turn reads it in this same loop turn
        return text


@pytest.mark.parametrize(("said", "extra_ms"), [("So I think that", 1000), ("So I think that is it.", 0)])
async def test_words_that_trail_off_give_the_pause_more_time(said: str, extra_ms: int):
    stt = AnsweredSTT(said)
    call = await connected(stt)
    since = len(call.events)
    call.hear([SPEECH] * 10 + [QUIET] * 3)  # a pause: the reply starts, its transcript comes during the hang-over
    await call.settle(lambda: stt.answered == 1)
    quiet = 3
    while "speech:end" not in call.kinds(since):
        call.hear([QUIET])
        quiet += 1
    assert quiet == (500 + extra_ms) // WINDOW_MS + 1
    await call.close()


@pytest.mark.parametrize(
    ("said", "probability", "silence_ms", "complete_ms"),
    [
        ("So that is it.", 0.95, 1200, None),  # complete, and the words agree: the hang-over, no sooner
        ("So that is it.", 0.95, 600, 600),  # ... or PARLEY_TURN_COMPLETE_MS where the operator trusts the model
        ("So that is it.", 0.2, 3000, None),  # the voice says they are not done: a thinking pause may last 3 s
        ("So I think that", 0.95, 3000, 600),  # the words trail off: the same, whatever the voice says
        ("So that is it.", None, 1200, 600),  # no verdict: the hang-over
    ],
)
async def test_the_end_of_turn_model_and_the_words_decide_how_long_a_pause_may_last(
    said: str, probability: float | None, silence_ms: int, complete_ms: int | None
):
    stt, model = AnsweredSTT(said), ScriptedTurnModel(probability)
    settings = Settings(turn_complete_ms=complete_ms)  # no PARLEY_HANGOVER_MS: language practice waits 1200 ms
    call = await connected(stt, mode="language", settings=settings, turn_model=model)
    since = len(call.events)
    call.hear([SPEECH] * 10 + [QUIET] * 3)  # a pause: the model is asked and the speculative transcript starts
    await call.settle(lambda: stt.answered == 1 and len(model.asked) == 1)
    quiet = 3
    while "speech:end" not in call.kinds(since):
        call.hear([QUIET])
        quiet += 1
    assert quiet == -(-silence_ms // WINDOW_MS)  # the windows that make up that much silence
    assert model.asked == [pytest.approx((10 + 3) * WINDOW_MS / 1000)]  # the speech and the pause so far
    await call.close()


async def test_a_verdict_on_a_pause_the_person_has_resumed_from_is_ignored():
    stt, model = AnsweredSTT("So that is it."), ScriptedTurnModel(0.2)
    call = await connected(stt, turn_model=model)  # chat, Settings(hangover_ms=500)
    since = len(call.events)
    call.hear([SPEECH] * 10 + [QUIET] * 3)
    call.hear([SPEECH] * 5)  # they go on before the verdict ("not done": 2 s) is in
    await call.settle(lambda: len(model.asked) == 1)
    model.probability = None  # no verdict on the next pause
    call.hear([QUIET] * 3)
    await call.settle(lambda: len(model.asked) == 2)
    quiet = 3
    while "speech:end" not in call.kinds(since):
        call.hear([QUIET])
        quiet += 1
    assert quiet == 500 // WINDOW_MS + 1  # the hang-over, not the first pause's 2 s
    await call.close()


async def test_each_mode_waits_its_own_hang_over_and_a_mode_change_takes_the_new_one():
    call = await connected(settings=Settings())  # no PARLEY_HANGOVER_MS: chat 700 ms, language 1200 ms
    ends = []
    for _ in range(2):
        since = len(call.events)
        call.hear([SPEECH] * 10)
        quiet = 0
        while "speech:end" not in call.kinds(since):
            call.hear([QUIET])
            quiet += 1
        ends.append(quiet)
        await call.play_until(listening(call, since))
        since = len(call.events)
        call.call._on_message('{"type": "mode", "mode": "language", "language": "en"}')
        await call.play_until(listening(call, since))
    assert ends == [700 // WINDOW_MS + 1, 1200 // WINDOW_MS + 1]
    await call.close()


@pytest.mark.parametrize("mode", ["chat", "interview"])
async def test_listening_ahead_reads_the_words_so_far_but_the_turn_is_the_whole_utterance(mode: str):
    whole = "I went hiking in the mountains with my sister"
    stt, llm = FakeSTT("I went hiking in the mountains", whole), FakeLLM("Sounds lovely.")
    llm.reads_ahead = True
    call = await connected(stt, llm, mode, Settings(hangover_ms=500, listen_ahead="on"))
    since = len(call.events)
    call.hear([SPEECH] * 40)  # a partial transcript once a second of the utterance has come in
    await call.settle(lambda: bool(llm.prefills) or mode == "interview")
    call.hear([SPEECH] * 5 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(listening(call, since))
    users = [e["text"] for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "user"]
    if mode == "interview":  # its turns prompt the model with the app's own words: nothing to read ahead
        assert llm.prefills == [] and len(stt.calls) == 1 and users == ["I went hiking in the mountains"]
        await call.close()
        return
    assert users == [whole] and llm.requests[-1][-1]["content"] == whole
    assert [p[-1]["content"] for p in llm.prefills] == ["I went hiking in the"]  # its last word may be cut
    assert llm.prefills[0][:-1] == llm.requests[-1][:-1]  # the history the turn is answered with
    await call.close()


async def test_an_interview_hung_up_sends_its_scorecard_then_ended_then_closes():
    call = await connected(mode="interview")
    since = len(call.events)
    call.call._on_message('{"type": "end"}')
    await call.call.closed.wait()
    assert call.kinds(since) == ["scorecard", "ended"]
    assert call.events[-1] == {"type": "ended", "reason": "requested"}
    assert call.events[since]["asked"] == 1 and call.events[since]["questions"][0]["verdict"] == "unanswered"


def test_the_call_gives_the_turn_taker_every_hook_it_asks_for():
    for name, hook in vars(TurnHooks).items():
        if name.startswith("_"):
            continue
        given = getattr(Call, name)
        if isinstance(hook, property):
            assert isinstance(given, property), name
        else:
            assert inspect.signature(given).parameters.keys() == inspect.signature(hook).parameters.keys(), name


def test_the_options_default_to_each_modes_hang_over_and_settings_override_it():
    defaults = TurnOptions.from_settings(Settings())
    assert defaults.hangover_ms == {"interview": 1300, "language": 1200, "chat": 700}  # thinking, searching, quick
    assert defaults.unfinished_extra_ms == 1000
    assert (defaults.start_windows, defaults.barge_in_windows, defaults.release_grace_ms) == (3, 8, 320)
    tuned = TurnOptions.from_settings(Settings(hangover_ms=650, vad_start_windows=4, barge_in_windows=2))
    assert set(tuned.hangover_ms.values()) == {650} and tuned.barge_in_windows == 4


async def test_an_ended_call_lets_go_of_the_persons_audio_and_words_at_once():
    stt, llm = FakeSTT("what is a thread"), FakeLLM("A thread shares its memory.")
    call = await connected(stt, llm)
    since = len(call.events)
    call.hear([QUIET] * 5 + [SPEECH] * 20 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(listening(call, since))
    call.hear([SPEECH] * 10)  # talking again as they hang up: an utterance in the buffer
    await call.close()
    # The shared chat model is told to drop this conversation (a real one clears it from its cache) ...
    assert llm.forgotten and llm.forgotten[-1][-1] == {"role": "assistant", "content": "A thread shares its memory."}
    # ... and the call holds no audio, reply or encoder once closed, even before the garbage collector runs.
    turn_taker, track = call.call.turn_taker, call.call.track
    assert turn_taker._utterance is None and not turn_taker._preroll and turn_taker._current is None
    assert track._opus is None and not track.busy and track.on_segment_start is None
