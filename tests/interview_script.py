"""Helpers for scripted interviews: answers built from the bank's own key points, so each one is known to cover
exactly the key points it was built from, and reading a reply back into opener, feedback and next question."""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.dialogue.bank import Question, default_bank
from server.dialogue.interview import OPENERS
from server.dialogue.judge import Verdict

BANK = default_bank()
# Covers no key point of any question (tests/test_interview.py checks it).
WRONG_ANSWER = "I think it is mostly about picking nice colours for the buttons."
DONT_KNOW = "Sorry, I don't know."
PRAISE = re.compile(
    r"\b(great|excellent|good|well done|perfect|exactly|spot on|nice|impressive|awesome|fantastic|brilliant|"
    r"correct|you'?re right|that'?s right)\b",
    re.IGNORECASE,
)


def answer(question: Question, kind: str) -> tuple[str, tuple[int, ...]]:
    """An answer of ``kind`` (correct, partial, wrong, idk) and the key points it covers."""
    if kind == "wrong":
        return WRONG_ANSWER, ()
    if kind == "idk":
        return DONT_KNOW, ()
    covered = tuple(range(len(question.key_points))) if kind == "correct" else (0,)
    said = " ".join("Also " + " ".join(g[0] for g in question.key_points[i].match) + "." for i in covered)
    return said, covered


def expected_verdict(kind: str) -> Verdict:
    return {"correct": Verdict.CORRECT, "partial": Verdict.PARTLY, "wrong": Verdict.WRONG,
            "idk": Verdict.NO_ANSWER}[kind]  # fmt: skip


def question_at_end(text: str) -> Question | None:
    """The bank question a reply ends with (the one now on the table), if any."""
    return next((q for q in BANK.questions if text.rstrip().endswith(q.text)), None)


@dataclass
class ReadReply:
    opener: str
    feedback: str
    question: Question | None


def read_reply(text: str) -> ReadReply:
    """Splits a reply into the verdict opener, the feedback after it and the question it ends with."""
    opener = next((o for options in OPENERS.values() for o in options if text.startswith(o)), "")
    question = question_at_end(text)
    body = text[len(opener) :]
    if question is not None:
        body = body[: body.rindex(question.text)]
        for lead in ("Next question.", "Let's move on.", "Here's the next one."):
            body = body.rstrip().removesuffix(lead)
    return ReadReply(opener, body.strip(), question)
