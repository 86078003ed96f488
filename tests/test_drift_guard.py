"""Drifted reply sentences never reach the voice: the model tries once more, then drifted sentences are dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from server.dialogue.drift_guard import guard, reply_language
from tests.fakes import FakeLLM, FakeSTT, FakeTTS, fake_providers
from tests.helpers import is_


async def collect(stream: AsyncIterator[str]) -> str:
    return "".join([d async for d in stream]).strip()


MESSAGES = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hola."}]


def model(*replies: str) -> tuple[FakeLLM, object]:
    llm = FakeLLM(*replies, token_delay=0)
    return llm, lambda prompt: llm.stream(prompt, temperature=0.7, max_tokens=100)


async def test_a_reply_in_the_language_passes_unchanged() -> None:
    llm, make = model("¡Qué bien! ¿Y qué comiste después?")
    assert await collect(guard(make, MESSAGES, "language", "es")) == "¡Qué bien! ¿Y qué comiste después?"
    assert len(llm.requests) == 1


async def test_a_drifted_first_sentence_makes_the_model_try_again() -> None:
    llm, make = model("That's great, what did you do after work? Tell me.", "¡Qué bien! ¿Qué hiciste después?")
    assert await collect(guard(make, MESSAGES, "language", "es")) == "¡Qué bien! ¿Qué hiciste después?"
    assert len(llm.requests) == 2
    # The new try names the language on the person's message.
    assert llm.requests[0][-1]["content"] == "Hola." and llm.requests[1][-1]["content"] == "Hola.\n(Reply in Spanish.)"


async def test_a_second_drift_is_dropped_and_nothing_drifted_is_said() -> None:
    llm, make = model("That's great, what did you do after work?", "Oh that's nice, and what did you have?")
    assert await collect(guard(make, MESSAGES, "language", "es")) == ""
    assert len(llm.requests) == 2


async def test_a_drifted_sentence_later_in_the_reply_is_dropped() -> None:
    llm, make = model("Très bien ! That's a great question, tell me more. Et toi, qu'est-ce que tu fais ce soir ?")
    said = await collect(guard(make, MESSAGES, "language", "fr"))
    assert said == "Très bien ! Et toi, qu'est-ce que tu fais ce soir ?"
    assert len(llm.requests) == 1  # the first sentence was good: it had been spoken, so no new try


async def test_chinese_leaking_into_a_reply_is_never_passed_on() -> None:
    _, make = model("Me gusta mucho. 我觉得这个主意很好。 ¿Y a ti?")
    said = await collect(guard(make, MESSAGES, "language", "es"))
    assert "我" not in said and said.startswith("Me gusta mucho.")


async def test_a_chat_reply_in_another_language_than_the_session_is_asked_for_by_name() -> None:
    llm, make = model("Très bien, et toi ?")
    assert await collect(guard(make, MESSAGES, "chat", "fr", "en")) == "Très bien, et toi ?"
    assert llm.requests[0][-1]["content"] == "Hola.\n(Reply in French.)"


async def test_interview_replies_are_not_filtered() -> None:
    _, make = model("Right. 这是一个问题。")
    assert await collect(guard(make, MESSAGES, "interview", "en")) == "Right. 这是一个问题。"


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        ("chat", "Qu'est-ce que tu fais ce week-end avec tes amis ?", "fr"),
        ("chat", "今日は何をしましたか", "ja"),
        ("chat", "ok", "en"),  # too short to tell: the session's language
        ("language", "That's great, what did you do?", "de"),  # language practice stays in its language
    ],
)
def test_the_reply_language_follows_the_person_in_chat_only(mode: str, text: str, expected: str) -> None:
    session = "de" if mode == "language" else "en"
    assert reply_language(mode, session, text) == expected


async def test_in_a_call_the_drifted_reply_is_neither_spoken_nor_kept(start_server, call_client) -> None:
    llm = FakeLLM("That's great, what did you do after work?", "¡Qué bien! ¿Qué hiciste después del trabajo?")
    tts = FakeTTS()
    url = await start_server(fake_providers(llm=llm, tts=tts))
    call = await call_client(url, mode="language", language="es")
    greeted = await call.wait_listening()

    call.send({"type": "text", "text": "Hoy yo trabajé mucho."})
    said_t, said = await call.wait_for(is_("transcript", role="assistant"), 10, greeted)
    assert said["text"] == "¡Qué bien! ¿Qué hiciste después del trabajo?"
    assert not [t for t in tts.texts if "great" in t], tts.texts
    # The next turn's history holds only what was said.
    call.send({"type": "text", "text": "Fui al cine."})
    await call.wait_for(is_("transcript", role="assistant"), 10, said_t + 0.001)
    assert len(llm.requests) == 3  # turn one twice (drifted, then good), turn two once
    history = " ".join(m["content"] for m in llm.requests[-1])
    assert "That's great" not in history and "¡Qué bien!" in history


async def test_in_chat_the_bot_answers_in_the_language_the_person_types(start_server, call_client) -> None:
    tts = FakeTTS()
    url = await start_server(fake_providers(llm=FakeLLM("Très bien, et toi ?"), tts=tts))
    call = await call_client(url, mode="chat", language="en")
    greeted = await call.wait_listening()
    styles: list[str] = []
    original = tts.synthesize

    def recording(text, style):
        styles.append(style.language)
        return original(text, style)

    tts.synthesize = recording  # type: ignore[method-assign]
    call.send({"type": "text", "text": "Salut ! Qu'est-ce que tu fais ce soir avec tes amis ?"})
    await call.wait_for(is_("transcript", role="assistant"), 10, greeted)
    assert styles == ["fr"]  # said with the French voice, not the English one


@pytest.mark.parametrize(("mode", "others"), [("chat", 13), ("language", 0), ("interview", 0)])
async def test_only_chat_lets_speech_recognition_hear_another_language(
    mode: str, others: int, start_server, call_client, tts_speech, silence
) -> None:
    stt = FakeSTT("bonjour")
    url = await start_server(fake_providers(stt=stt))
    call = await call_client(url, mode=mode, language="en")
    greeted = await call.wait_listening()
    call.mic.play(np.concatenate([tts_speech("Hello, how are you today?"), silence(1.5)]))
    await call.wait_for(is_("transcript", role="user"), 20, greeted)
    assert stt.calls[-1][1] == "en" and len(stt.languages[-1]) == others
