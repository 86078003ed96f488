"""The person's call controls on scripted speech (tests/scripted.py): mute, hold ("give me a moment") and
push-to-talk, what the server then hears and says, the ``controls`` event, and the idle limit while muted or held.
The page's buttons for them are in test_call_page.py."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from server.audio.vad import WINDOW_MS
from server.config import Settings
from server.events import BadMessage, Control, parse_client_message
from tests.fakes import FakeLLM, FakeSTT
from tests.scripted import HANGOVER_WINDOWS, LONG_REPLY, QUIET, SPEECH, ScriptedCall, connected, listening

FIVE_SECONDS = 5000 // WINDOW_MS


def send(call: ScriptedCall, **message: object) -> None:
    call.call._on_message(json.dumps(message))


def users(call: ScriptedCall, since: int) -> list[str]:
    return [e["text"] for e in call.events[since:] if e["type"] == "transcript" and e["role"] == "user"]


def last_controls(call: ScriptedCall) -> dict:
    return next(e for e in reversed(call.events) if e["type"] == "controls")


async def talking_bot(call: ScriptedCall) -> int:
    """The bot half a second into a long reply; the index of the next event."""
    since = len(call.events)
    send(call, type="text", text="tell me about threads")
    await call.play_until(lambda: "state:speaking" in call.kinds(since))
    for _ in range(25):
        call.frame()
    return len(call.events)


def test_each_control_takes_a_boolean():
    assert parse_client_message('{"type": "mute", "muted": true}') == Control("mute", True)
    assert parse_client_message('{"type": "talk", "pressed": false}') == Control("talk", False)
    for bad in ('{"type": "hold"}', '{"type": "hold", "held": "yes"}', '{"type": "push_to_talk", "enabled": 1}'):
        with pytest.raises(BadMessage, match="must be true or false") as refused:
            parse_client_message(bad)
        assert refused.value.code == "bad_message"


async def test_a_muted_person_is_neither_a_turn_nor_a_barge_in_and_is_heard_again_once_unmuted():
    stt, llm = FakeSTT("are you there"), FakeLLM(LONG_REPLY, "Yes, I am here.")
    call = await connected(stt, llm)
    since = await talking_bot(call)
    send(call, type="mute", muted=True)
    assert last_controls(call) == {"type": "controls", "muted": True, "held": False, "push_to_talk": False,
                                   "talking": False}  # fmt: skip
    call.hear([SPEECH] * 30 + [QUIET] * HANGOVER_WINDOWS)  # talking over the bot, muted
    assert not call.call.track.held
    await call.play_until(listening(call, since))  # the long reply is said to its end
    assert "speech:start" not in call.kinds(since) and "interrupted" not in call.kinds(since)
    assert users(call, since) == [] and stt.calls == []
    send(call, type="mute", muted=False)
    since = len(call.events)
    call.hear([SPEECH] * 20 + [QUIET] * HANGOVER_WINDOWS)
    await call.play_until(listening(call, since))
    assert users(call, since) == ["are you there"]
    await call.close()


async def test_on_hold_the_bot_stops_a_long_silence_is_no_turn_and_the_words_are_answered_on_release():
    stt, llm = FakeSTT("I would use a queue"), FakeLLM(LONG_REPLY, "A queue works.")
    call = await connected(stt, llm)
    since = await talking_bot(call)
    send(call, type="hold", held=True)
    await call.settle(lambda: "interrupted" in call.kinds(since))
    assert last_controls(call)["held"] is True
    since = len(call.events)
    call.hear([SPEECH] * 20 + [QUIET] * FIVE_SECONDS + [SPEECH] * 10 + [QUIET] * FIVE_SECONDS)
    await asyncio.sleep(0.05)
    assert "speech:end" not in call.kinds(since) and users(call, since) == []
    send(call, type="hold", held=False)
    call.hear([QUIET])  # the silence has lasted long enough: the turn ends at the next window
    await call.play_until(listening(call, since))
    assert users(call, since) == ["I would use a queue"]
    assert llm.requests[-1][-1]["content"].endswith("I would use a queue")  # after "[INTERRUPTED]": hold cut the bot
    assert stt.calls[-1][0] > 5  # one turn: both stretches of speech and the silence between them
    await call.close()


async def test_push_to_talk_hears_only_while_pressed_and_ends_the_turn_on_release_without_a_hang_over():
    stt, llm = FakeSTT("what is a mutex"), FakeLLM("A lock.")
    call = await connected(stt, llm, settings=Settings(hangover_ms=1500))
    send(call, type="talk", pressed=True)
    assert call.events[-1]["type"] == "error" and "push_to_talk" in call.events[-1]["message"]
    send(call, type="push_to_talk", enabled=True)
    since = len(call.events)
    call.hear([SPEECH] * 20 + [QUIET] * 60)  # not pressed: not heard
    assert "speech:start" not in call.kinds(since)
    send(call, type="talk", pressed=True)
    assert last_controls(call)["talking"] is True
    call.hear([SPEECH] * 20)
    assert call.kinds(since)[-1] == "speech:start"
    send(call, type="talk", pressed=False)  # mid-word: no 1.5 s hang-over
    assert "speech:end" in call.kinds(since)
    await call.play_until(listening(call, since))
    assert users(call, since) == ["what is a mutex"]
    heard_s = stt.calls[-1][0]
    assert heard_s <= (20 + 10) * WINDOW_MS / 1000  # the speech and its pre-roll, no silence after it
    await call.close()


async def test_pressing_talk_cuts_the_bot():
    call = await connected(FakeSTT("stop"), FakeLLM(LONG_REPLY, "Sure."))
    since = await talking_bot(call)
    send(call, type="push_to_talk", enabled=True)
    send(call, type="talk", pressed=True)
    await call.settle(lambda: "interrupted" in call.kinds(since))
    assert not np.abs(call.frame()).any()
    await call.close()


async def test_the_idle_limit_waits_while_the_person_is_muted_or_on_hold():
    call = await connected(settings=Settings(hangover_ms=500, idle_s=0.3))
    for control, field in (("mute", "muted"), ("hold", "held")):
        send(call, type=control, **{field: True})
        await asyncio.sleep(0.8)
        assert not call.call.closed.is_set() and "ended" not in call.kinds()
        send(call, type=control, **{field: False})
    await asyncio.wait_for(call.call.closed.wait(), 3)
    assert next(e for e in call.events if e["type"] == "ended")["reason"] == "idle"
