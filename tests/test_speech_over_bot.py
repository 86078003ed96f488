"""Speech over the bot, on scripted speech (tests/scripted.py): a backchannel or a laugh lets it go on from where
it held, words that take the floor or over a second of talking cut it, and a person who goes on just after the
bot began answering is heard and answered once (a continuation). Real calls: test_barge_in.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from server.audio.vad import WINDOW_MS
from tests.fakes import FakeLLM, FakeSTT
from tests.scripted import HANGOVER_WINDOWS, LONG_REPLY, QUIET, SPEECH, ScriptedCall, connected, listening


async def taken_up(continuation_s: float, mode: str = "chat") -> tuple[ScriptedCall, FakeSTT, FakeLLM, int]:
    """A spoken turn answered with a long reply, then the person talking again half a second into it."""
    stt = FakeSTT("I would use a cache", "I would use a cache and then shard it")
    llm = FakeLLM(LONG_REPLY, "Sharding works.", "Sharding works.")
    call = await connected(stt, llm, mode)
    call.call.turn_taker._options = replace(call.call.turn_taker._options, continuation_s=continuation_s)
    since = len(call.events)
    call.hear([SPEECH] * 20 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(lambda: "state:speaking" in call.kinds(since))
    for _ in range(25):
        call.frame()
    call.hear([SPEECH] * 15 + [QUIET] * HANGOVER_WINDOWS)  # they go on: "... and then shard it"
    await call.play_until(lambda: call.kinds(since).count("metrics") == 2 and listening(call, since)())
    return call, stt, llm, since


async def test_a_person_who_goes_on_just_after_the_bot_began_is_heard_and_answered_once():
    call, stt, llm, since = await taken_up(continuation_s=2.0)
    users = [e for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "user"]
    assert [u["text"] for u in users] == ["I would use a cache", "I would use a cache and then shard it"]
    assert users[1]["continues"] is True and "continues" not in users[0]
    assert stt.calls[-1][0] > (20 + 15) * WINDOW_MS / 1000  # Whisper heard both parts at once
    # The model is asked once about the whole: no trace of the first half or of the reply cut in it.
    assert [m["content"] for m in llm.requests[-1] if m["role"] == "user"] == ["I would use a cache and then shard it"]
    assert not any(LONG_REPLY[:30] in m["content"] for m in llm.requests[-1])
    assert call.counter("parley_continued_turns_total") == 1
    await call.close()


async def test_a_person_who_talks_over_an_answer_they_have_heard_for_a_while_interrupts_it():
    call, stt, llm, since = await taken_up(continuation_s=0.0)
    users = [e for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "user"]
    assert len(users) == 2 and not any(u.get("continues") for u in users)
    roles = [m["role"] for m in llm.requests[-1]][-3:]
    assert roles == ["user", "assistant", "user"]  # the first turn, what was heard of its reply, the new turn
    assert LONG_REPLY.startswith(llm.requests[-1][-2]["content"])
    assert call.counter("parley_continued_turns_total") == 0
    await call.close()


async def test_an_interview_answer_taken_up_again_is_judged_once_as_a_whole():
    call, _stt, _llm, _since = await taken_up(continuation_s=2.0, mode="interview")
    interview = call.call.responder.interview
    assert interview is not None
    assert len(interview.records) == 1 and len(interview.asked) == 2  # one answer judged, the next question asked
    await call.close()


@pytest.mark.parametrize("heard", ["Mm-hm.", "Yeah, right.", "", "(laughs)"])
async def test_a_backchannel_or_a_laugh_over_the_bot_lets_it_go_on_from_where_it_held(heard: str):
    llm = FakeLLM(LONG_REPLY)
    call = await connected(FakeSTT(heard), llm)
    since = len(call.events)
    call.call._on_message('{"type": "text", "text": "tell me about threads"}')
    await call.play_until(lambda: "state:speaking" in call.kinds(since))
    for _ in range(25):
        call.frame()
    call.hear([SPEECH] * 10 + [QUIET] * 4)  # 320 ms of "mm-hm", then quiet
    assert call.call.track.held
    await call.settle(lambda: "speech:end" in call.kinds(since))
    assert not call.call.track.held and np.abs(call.frame()).any()  # the bot goes on, from the same word
    await call.play_until(lambda: "transcript:assistant" in call.kinds(since))
    said = next(e for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "assistant")
    assert said["interrupted"] is False and said["text"] == LONG_REPLY
    assert "interrupted" not in call.kinds(since) and call.kinds(since).count("transcript:user") == 1  # typed
    assert call.counter("parley_backchannels_total") == 1 and call.counter("parley_barge_ins_total") == 0
    await call.close()


async def test_talking_over_the_bot_for_over_a_second_takes_the_floor_whatever_the_words():
    call = await connected(FakeSTT("yeah"), FakeLLM(LONG_REPLY, "Go ahead."))
    since = len(call.events)
    call.call._on_message('{"type": "text", "text": "tell me about threads"}')
    await call.play_until(lambda: "state:speaking" in call.kinds(since))
    call.hear([SPEECH] * 40)  # 1.3 s and still talking
    await call.settle(lambda: "interrupted" in call.kinds(since))
    assert call.counter("parley_barge_ins_total") == 1
    await call.close()


async def test_talking_over_the_bot_with_pauses_then_past_a_second_is_answered():
    # "Sorry, wait. What about Rome?" half a second into the reply: a pause whose verdict comes too late (they
    # went on), then over a second of talking takes the floor just as the next silence begins. (Found by
    # test_memory.py: a reply started for the first pause was left waiting for ever, and every reply after it.)
    stt = FakeSTT("Tell me about your city", "Sorry.", "Tell me about your city. Sorry, wait. What about Rome?")
    call = await connected(stt, FakeLLM(LONG_REPLY, "Rome is lovely.", "Rome is lovely."))
    since = len(call.events)
    call.hear([SPEECH] * 20 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(lambda: "state:speaking" in call.kinds(since))
    for _ in range(25):
        call.frame()
    call.hear([SPEECH] * 10 + [QUIET] * 4 + [SPEECH] * 16 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(lambda: call.kinds(since).count("metrics") == 2 and listening(call, since)())
    users = [e["text"] for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "user"]
    assert users[-1] == "Tell me about your city. Sorry, wait. What about Rome?"
    await call.close()
