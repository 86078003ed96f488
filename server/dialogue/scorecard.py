"""An interview's scorecard: every question asked, what each answer covered and missed, what to study next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.dialogue.bank import Bank, Question
from server.dialogue.judge import Verdict

SCORECARD_QUESTIONS = 20  # the most recent ones; keeps the event far under the 16 KiB message limit
STUDY_NEXT = 4
WORST_FIRST = {"no_answer": 0, "wrong": 1, "skipped": 2, "partly": 3, "correct": 4}


@dataclass
class Record:
    question: Question
    status: str  # a Verdict value, "skipped", or "unanswered" for the question still open
    covered: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)


def study_next(records: list[Record], bank: Bank) -> list[str]:
    """The key points missed, worst answers first: two from an answer that missed everything, one otherwise."""
    study: list[str] = []
    for record in sorted(records, key=lambda r: WORST_FIRST.get(r.status, 9)):
        topic = bank.topics[record.question.topic]
        for point in record.missed[: 2 if record.status in ("wrong", "no_answer", "skipped") else 1]:
            if len(study) < STUDY_NEXT:
                study.append(f"{topic[:1].upper()}{topic[1:]}: {point.removeprefix('that ')}")
    return study


def scorecard(records: list[Record], current: Question | None, bank: Bank, level: str) -> dict[str, Any]:
    """The ``scorecard`` event's fields; ``current`` is the question still open, if any."""
    records = [*records, *([Record(current, "unanswered")] if current is not None else [])]
    verdicts = {v.value for v in Verdict}
    return {
        "questions": [
            {
                "id": r.question.id,
                "topic": r.question.topic,
                "level": r.question.level,
                "question": r.question.text,
                "verdict": r.status,
                "covered": r.covered,
                "missed": r.missed,
            }
            for r in records[-SCORECARD_QUESTIONS:]
        ],
        "asked": len(records),
        "answered": sum(r.status in verdicts for r in records),
        "totals": {s: sum(r.status == s for r in records) for s in (*(v.value for v in Verdict), "skipped")},
        "level": level,
        "study_next": study_next(records, bank),
    }
