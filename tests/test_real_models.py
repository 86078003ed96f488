"""One real turn through the embedded models: a spoken question in, a sensible spoken answer out."""

from __future__ import annotations

import re

import numpy as np
import pytest

from parley.audio import RATE
from server.config import Settings

pytestmark = pytest.mark.real_models


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


async def test_a_spoken_question_gets_a_sensible_spoken_answer(
    start_server, call_client, tts_speech, silence, real_providers
):
    url = await start_server(real_providers, Settings(ice_loopback=True, hangover_ms=700))
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening(timeout=60)

    call.mic.play(np.concatenate([tts_speech("What is the capital city of France?"), silence(2.0)]))
    user_t, user = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "user", 60, greeted)
    assert "france" in words(user["text"]), user["text"]  # ("capital" is sometimes heard as "capitol")
    said_t, said = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 120, user_t)
    assert "paris" in words(said["text"]), said["text"]
    _, metrics = next((t, e) for t, e in call.events if e["type"] == "metrics")
    assert metrics["turn"] == 1 and metrics["response_ms"] > 0

    # What reached the client is audible speech that says the same thing: Whisper reads it back.
    reply = call.recording.audio_between(user_t, said_t + 0.5)
    assert reply.size > RATE  # more than a second of audio
    heard = await real_providers.stt.transcribe(reply[::3].astype(np.float32) / 32768, "en")
    assert "paris" in words(heard), heard
    overlap = len(words(heard) & words(said["text"])) / len(words(said["text"]))
    assert overlap >= 0.5, (heard, said["text"])


async def test_a_spoken_wrong_answer_in_an_interview_gets_unpraised_feedback_then_the_next_question(
    start_server, call_client, tts_speech, silence, real_providers
):
    from server.dialogue.interview import OPENERS
    from server.dialogue.judge import Verdict
    from tests.interview_script import PRAISE, WRONG_ANSWER, question_at_end, read_reply

    url = await start_server(real_providers, Settings(ice_loopback=True, hangover_ms=700))
    call = await call_client(url, mode="interview")
    greeted = await call.wait_listening(timeout=60)
    _, greeting = call.find(lambda e: e["type"] == "transcript" and e["role"] == "assistant")
    asked = question_at_end(greeting["text"])
    assert asked is not None, greeting["text"]

    call.mic.play(np.concatenate([tts_speech(WRONG_ANSWER), silence(2.0)]))
    user_t, user = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "user", 60, greeted)
    assert {"colours", "colors", "buttons"} & words(user["text"]), user["text"]
    said_t, said = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 120, user_t)
    reply = read_reply(said["text"])
    # The verdict the app chose, the model's feedback (never praise), then the next question from the bank.
    assert reply.opener in OPENERS[Verdict.WRONG], said["text"]
    assert reply.feedback and not PRAISE.search(reply.feedback), said["text"]
    assert reply.question is not None and reply.question != asked, said["text"]
    print(f"real interview reply: {said['text']}")
    assert call.recording.first_loud_after(user_t) is not None

    card = await call.end()
    assert card is not None and card["questions"][0]["verdict"] == "wrong"
    assert card["questions"][0]["missed"] == [kp.point for kp in asked.key_points]


async def test_a_guess_read_ahead_that_turned_out_wrong_does_not_leak_into_the_reply(real_providers):
    """Listening ahead fills the model's cache with a partial transcript; the final words differ from it after
    "is", and the reply must follow the final words."""
    llm = real_providers.llm
    history = [{"role": "system", "content": "Answer in one short sentence."}]
    await llm.prefill([*history, {"role": "user", "content": "My favourite colour is blue and my"}])
    final = [*history, {"role": "user", "content": "My favourite colour is green. Which colour do I like?"}]
    reply = "".join([d async for d in llm.stream(final, temperature=0.0, max_tokens=24)])
    assert "green" in words(reply) and "blue" not in words(reply), reply
