"""The interview flow: intents, feedback filtering, the app-guaranteed order (verdict, feedback, next question),
the scorecard, and whole interview calls over real WebRTC, typed and spoken, with scripted model stages."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection

import numpy as np
import pytest

from server.app import CALLS
from server.dialogue.interview import OPENERS, Intent, Interview, clean_feedback, detect_intent
from server.dialogue.judge import Judge, Verdict, offline_coverage
from tests.fakes import FakeLLM, FakeSTT, fake_providers
from tests.helpers import is_
from tests.interview_script import (
    BANK,
    DONT_KNOW,
    PRAISE,
    WRONG_ANSWER,
    answer,
    expected_verdict,
    question_at_end,
    read_reply,
)  # fmt: skip

# What the scripted model says for each kind of answer: for a wrong one it praises, as the 1.5B model does.
FEEDBACK = {
    "correct": "You covered every point clearly.",
    "partial": "Great answer! You have the first point, but the rest is missing.",
    "wrong": "Excellent, that's correct! The right idea is quite different. What do you think?",
}


def test_intents_are_read_from_short_utterances_only():
    assert detect_intent("Wait.") is Intent.WAIT
    assert detect_intent("um hold on a second") is Intent.WAIT
    assert detect_intent("Sorry, can you repeat the question?") is Intent.REPEAT
    assert detect_intent("I didn't catch that") is Intent.REPEAT
    assert detect_intent("Can we skip this one?") is Intent.SKIP
    assert detect_intent("next question please") is Intent.SKIP
    assert detect_intent("Wait, I know this one: a hash map hashes each key into a bucket.") is Intent.ANSWER
    assert detect_intent("I don't know") is Intent.ANSWER  # an answer: the judge's "no answer" verdict


def test_feedback_on_an_answer_that_was_not_correct_is_never_praise():
    assert clean_feedback("Great answer! Lookups take constant time.", Verdict.WRONG) == "Lookups take constant time."
    assert clean_feedback("That's correct.", Verdict.WRONG) is None
    assert clean_feedback("You're right that it is fast.", Verdict.WRONG) is None
    assert clean_feedback("The right idea is to hash the key.", Verdict.WRONG) == "The right idea is to hash the key."
    partly = clean_feedback("Excellent, you have the buckets right, but collisions are missing.", Verdict.PARTLY)
    assert partly == "You have the buckets right, but collisions are missing."
    assert clean_feedback("Perfect explanation of buckets, though.", Verdict.PARTLY) is None
    # Never a question of its own, code, or a verdict against the app's.
    assert clean_feedback("Can you tell me more?", Verdict.CORRECT) is None
    assert clean_feedback("def lookup(key):", Verdict.CORRECT) is None
    assert clean_feedback("Not quite, you missed collisions.", Verdict.CORRECT) is None
    assert clean_feedback("Spot on, you covered all of it.", Verdict.CORRECT) == "Spot on, you covered all of it."
    assert clean_feedback("Missing: collisions need chaining.", Verdict.PARTLY) == "Collisions need chaining."


def test_the_wrong_answer_covers_nothing_and_built_answers_cover_what_they_were_built_from():
    for question in BANK.questions:
        assert offline_coverage(question, WRONG_ANSWER) == ()
        for kind in ("correct", "partial"):
            said, covered = answer(question, kind)
            assert offline_coverage(question, said) == covered, (question.id, kind)
            assert detect_intent(said) is Intent.ANSWER, (question.id, said)  # not "pass", "skip", "wait"...


async def _reply(interview: Interview, text: str, llm: FakeLLM) -> str:
    plan = await interview.plan(text)
    parts = [delta async for delta in plan.deltas(llm, 0.7, 120)]
    plan.commit()
    return "".join(parts).strip()


async def test_each_answer_gets_its_verdict_then_feedback_then_the_next_question():
    llm = FakeLLM(FEEDBACK["correct"], FEEDBACK["partial"], FEEDBACK["wrong"])
    interview = Interview(BANK, Judge(), random.Random(4))
    question = interview.first_question()
    for kind in ("correct", "partial", "wrong", "idk"):
        said, covered = answer(question, kind)
        text = await _reply(interview, said, llm)
        reply = read_reply(text)
        verdict = expected_verdict(kind)
        assert reply.opener in OPENERS[verdict], text
        assert reply.feedback and reply.question is not None and reply.question != question, text
        assert text.index(reply.feedback) < text.index(reply.question.text)
        if verdict is not Verdict.CORRECT:
            assert not PRAISE.search(reply.feedback), text
        if kind == "partial":
            # The model was told what the app decided, and phrased only that.
            facts = llm.requests[-1][-1]["content"]
            assert "The answer was partly right (already said)" in facts
            assert all(kp.point in facts for kp in question.key_points)
            # The app's own sentence first (said while the model writes), then the model's, praise filtered out.
            assert reply.feedback.startswith(f"You mentioned {question.key_points[0].point}, but a strong answer")
            assert reply.feedback.endswith(". You have the first point, but the rest is missing.")
            assert "You have already said" in facts and "Do not repeat" in facts
        if kind == "wrong":
            assert reply.feedback.startswith("A strong answer would mention " + question.key_points[0].point)
            assert reply.feedback.endswith(". The right idea is quite different.")
        if kind == "idk":
            assert reply.feedback.startswith("A strong answer would mention " + question.key_points[0].point)
        assert [r.status for r in interview.records][-1] == verdict.value
        assert interview.current == reply.question
        question = reply.question
    assert len(llm.requests) == 3  # "I don't know" needs no model


async def test_a_model_whose_feedback_is_all_filtered_out_is_replaced_by_the_apps_own():
    interview = Interview(BANK, Judge(), random.Random(1))
    question = interview.first_question()
    said, _ = answer(question, "partial")
    text = await _reply(interview, said, FakeLLM("Great job! Perfect! What else can you tell me?"))
    reply = read_reply(text)
    assert reply.feedback == (
        f"You mentioned {question.key_points[0].point}, but a strong answer would also cover "
        f"{question.key_points[1].point} and {question.key_points[2].point}."
    )


async def test_feedback_cut_off_by_the_token_cap_is_said_up_to_its_last_full_sentence():
    interview = Interview(BANK, Judge(), random.Random(5))
    question = interview.first_question()
    said, _ = answer(question, "partial")
    text = await _reply(interview, said, FakeLLM("You got the first point. You left out the part about the"))
    feedback = read_reply(text).feedback
    assert feedback.endswith(". You got the first point.") and "left out" not in feedback


async def test_wait_repeat_and_skip_keep_or_move_the_question_as_asked():
    llm = FakeLLM("unused")
    interview = Interview(BANK, Judge(), random.Random(2))
    question = interview.first_question()
    assert await _reply(interview, "Hold on, let me think.", llm) in ("Sure, take your time.", "Of course, no rush.")
    assert await _reply(interview, "Could you repeat the question?", llm) == f"Sure, here it is again. {question.text}"
    assert await _reply(interview, "ok", llm) == f"Could you say a bit more? {question.text}"
    assert interview.current == question and interview.records == []
    skipped = await _reply(interview, "Can we skip this one?", llm)
    assert skipped.startswith("No problem, let's skip that one.")
    assert question_at_end(skipped) not in (None, question)
    assert interview.records[0].status == "skipped" and llm.requests == []


async def test_the_scorecard_lists_every_question_with_what_was_covered_and_missed():
    interview = Interview(BANK, Judge(), random.Random(3))
    first = interview.first_question()
    await _reply(interview, answer(first, "partial")[0], FakeLLM(FEEDBACK["partial"]))
    second = interview.current
    assert second is not None
    await _reply(interview, DONT_KNOW, FakeLLM())
    card = interview.scorecard()
    assert [q["question"] for q in card["questions"]] == [first.text, second.text, interview.current.text]
    assert [q["verdict"] for q in card["questions"]] == ["partly", "no_answer", "unanswered"]
    assert card["questions"][0]["covered"] == [first.key_points[0].point]
    assert card["questions"][0]["missed"] == [kp.point for kp in first.key_points[1:]]
    assert card["asked"] == 3 and card["answered"] == 2
    assert card["totals"] == {"correct": 0, "partly": 1, "wrong": 0, "no_answer": 1, "skipped": 0}
    # What to study: the unanswered question's key points first, then what the partial answer missed.
    assert card["study_next"][0].endswith(second.key_points[0].point.removeprefix("that "))
    assert any(s.endswith(first.key_points[1].point.removeprefix("that ")) for s in card["study_next"])


# -- whole calls ----------------------------------------------------------------------------------------------
async def _interview_call(start_server, call_client, providers):
    url = await start_server(providers)
    call = await call_client(url, mode="interview")
    greeted = await call.wait_listening()
    _, greeting = call.find(is_("transcript", role="assistant"))
    question = question_at_end(greeting["text"])
    assert question is not None, greeting
    return call, greeted, question


async def _typed(call, text: str, after: float) -> tuple[float, str]:
    call.send({"type": "text", "text": text})
    user_t, _ = await call.wait_for(is_("transcript", role="user", text=text), 10, after)
    t, said = await call.wait_for(is_("transcript", role="assistant", interrupted=False), 20, user_t)
    return t, said["text"]


def _check_turn(text: str, kind: str, question):
    reply = read_reply(text)
    assert reply.opener in OPENERS[expected_verdict(kind)], text
    assert reply.feedback and reply.question not in (None, question), text
    if kind != "correct":
        assert not PRAISE.search(reply.feedback), text
    return reply.question


async def test_a_typed_interview_is_judged_by_the_key_points_and_scored_at_the_end(start_server, call_client):
    llm = FakeLLM(FEEDBACK["correct"], FEEDBACK["partial"], FEEDBACK["wrong"])
    call, t, question = await _interview_call(start_server, call_client, fake_providers(llm=llm))
    expected = []
    for kind in ("correct", "partial", "wrong", "idk"):
        said, covered = answer(question, kind)
        t, text = await _typed(call, said, t)
        expected.append((question, kind, covered))
        question = _check_turn(text, kind, question)
    t, text = await _typed(call, "Can you repeat the question?", t)
    assert text == f"Sure, here it is again. {question.text}"

    call.send({"type": "scorecard"})
    card_t, card = await call.wait_for(is_("scorecard"), 5, t)
    verdicts = [expected_verdict(kind).value for _, kind, _ in expected]
    assert [q["verdict"] for q in card["questions"]] == [*verdicts, "unanswered"]
    for entry, (asked, _, covered) in zip(card["questions"], expected, strict=False):
        assert entry["question"] == asked.text
        assert entry["covered"] == [asked.key_points[i].point for i in covered]
        assert len(entry["covered"]) + len(entry["missed"]) == len(asked.key_points)
    assert card["study_next"]

    # Hanging up with "end": the scorecard comes first, then "ended".
    call.send({"type": "end"})
    end_t, final = await call.wait_for(lambda e: e["type"] == "scorecard" and e is not card, 5, card_t)
    _, ended = await call.wait_for(is_("ended"), 5, end_t)
    assert ended["reason"] == "requested" and final["asked"] == 5


async def test_end_closes_the_call_on_the_server_after_the_scorecard(start_server, call_client, started_apps):
    call, t, _ = await _interview_call(start_server, call_client, fake_providers())
    app = started_apps[-1]
    server_call = next(iter(app[CALLS].values()))
    call.send({"type": "end"})
    card_t, card = await call.wait_for(is_("scorecard"), 5, t)
    await call.wait_for(is_("ended", reason="requested"), 5, card_t)
    await asyncio.wait_for(server_call.closed.wait(), 10)
    assert card["asked"] == 1 and card["questions"][0]["verdict"] == "unanswered"


async def test_a_scorecard_outside_an_interview_is_a_clear_error(start_server, call_client):
    url = await start_server(fake_providers())
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening()
    call.send({"type": "scorecard"})
    _, error = await call.wait_for(is_("error"), 5, greeted)
    assert error["code"] == "bad_message" and "no interview" in error["message"]


class AnswerSTT(FakeSTT):
    """Hears whatever the test set as the next answer (the test says the same words out loud)."""

    def __init__(self) -> None:
        super().__init__()
        self.next = ""

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        await super().transcribe(audio, language)
        return self.next


async def test_a_spoken_interview_over_webrtc(start_server, call_client, tts_speech, silence):
    stt = AnswerSTT()
    llm = FakeLLM(FEEDBACK["partial"], FEEDBACK["wrong"])
    call, t, question = await _interview_call(start_server, call_client, fake_providers(stt, llm))
    for kind in ("partial", "wrong", "idk"):
        said, _ = answer(question, kind)
        stt.next = said
        call.mic.play(np.concatenate([tts_speech(said), silence(1.5)]))
        start_t, _ = await call.wait_for(is_("speech", event="start"), 10, t)
        user_t, _ = await call.wait_for(is_("transcript", role="user", text=said), 20, start_t)
        t, reply = await call.wait_for(is_("transcript", role="assistant", interrupted=False), 20, user_t)
        assert call.recording.first_loud_after(user_t) is not None  # the feedback was heard, not only sent
        question = _check_turn(reply["text"], kind, question)


@pytest.mark.parametrize("language", ["fr"])
async def test_interviews_in_other_languages_stay_with_the_model(start_server, call_client, language):
    llm = FakeLLM("Très bien. Question suivante ?")
    url = await start_server(fake_providers(llm=llm))
    call = await call_client(url, mode="interview", language=language)
    greeted = await call.wait_listening()
    t, text = await _typed(call, "Une table de hachage", greeted)
    assert text == "Très bien. Question suivante ?"
    assert llm.requests[-1][-1]["content"] == "Une table de hachage"


def test_the_remote_model_judges_only_where_it_is_remote_or_asked_for():
    from server.config import Settings
    from server.dialogue.interview import interview_for

    providers = fake_providers()

    def judge_of(**settings):
        interview = interview_for("interview", "en", Settings(**settings), providers, random.Random())
        assert interview is not None
        return interview.judge.remote

    assert judge_of() is None
    assert judge_of(llm="openai") is providers.llm
    assert judge_of(llm="openai", judge="offline") is None
    assert judge_of(judge="remote") is providers.llm
    assert interview_for("chat", "en", Settings(), providers, random.Random()) is None
    assert interview_for("interview", "de", Settings(), providers, random.Random()) is None
    with pytest.raises(ValueError, match="PARLEY_JUDGE"):
        Settings(judge="psychic").validate()
