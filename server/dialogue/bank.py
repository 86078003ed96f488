"""The interview question bank the project ships (questions.json): questions per topic and level, each with
the key points of a strong answer and the phrases that show a key point was said."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

BANK_FILE = Path(__file__).with_name("questions.json")
LEVELS = ("junior", "mid", "senior")


class BankError(ValueError):
    """The question bank file is malformed; the message says where."""


@dataclass(frozen=True)
class KeyPoint:
    point: str  # read aloud in feedback ("a strong answer would mention ...")
    match: tuple[tuple[str, ...], ...]  # every group must be said, by any one of its phrases


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    level: str
    text: str
    key_points: tuple[KeyPoint, ...]


@dataclass(frozen=True)
class Past:
    """What a person's earlier interviews say (server/history/continuity.py reads it from their history)."""

    level: str | None = None  # where the last one ended
    asked: tuple[str, ...] = ()  # question ids asked before, each once, most recent last
    weak_topics: frozenset[str] = frozenset()  # topics whose last question was missed


@dataclass(frozen=True)
class Bank:
    topics: dict[str, str]  # id -> words for it ("cloud and DevOps")
    questions: tuple[Question, ...]

    def by_id(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    def pick(
        self,
        rng: random.Random,
        level: str,
        asked: set[str],
        last_topic: str | None,
        past: Past | None = None,
    ) -> Question | None:
        """A question not asked yet: at ``level`` if one is left, else the nearest level. Within a level, one the
        person was not asked in an earlier interview (``past``) first, then the one asked longest ago (the level's
        bank is used up); a topic they last missed before others (it comes back sooner); on another topic than the
        last one where possible (an interview moves around). None when all were asked."""
        left = [q for q in self.questions if q.id not in asked]
        if not left:
            return None
        target = LEVELS.index(level)
        before = {qid: at for at, qid in enumerate(past.asked)} if past else {}
        # A weak topic asked again in this interview has come back: it is not pushed forward a second time.
        weak = (past.weak_topics if past else frozenset()) - {q.topic for q in self.questions if q.id in asked}

        def rank(q: Question) -> tuple[int, int, int, int]:
            return (abs(LEVELS.index(q.level) - target), before.get(q.id, -1), int(q.topic not in weak),
                    int(q.topic == last_topic))  # fmt: skip

        best = min(rank(q) for q in left)
        return rng.choice([q for q in left if rank(q) == best])


def _parse(data: object) -> Bank:
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise BankError("the bank must be an object with a list of questions")
    topics = data.get("topics")
    if not isinstance(topics, dict) or not topics:
        raise BankError("the bank must name its topics")
    questions: list[Question] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["questions"]):
        where = f"question {i} ({raw.get('id') if isinstance(raw, dict) else '?'})"
        if not isinstance(raw, dict):
            raise BankError(f"{where} is not an object")
        qid, topic, level, text = raw.get("id"), raw.get("topic"), raw.get("level"), raw.get("question")
        if not isinstance(qid, str) or qid in seen:
            raise BankError(f"{where}: missing or duplicate id")
        if topic not in topics or level not in LEVELS or not isinstance(text, str) or not text.strip():
            raise BankError(f"{where}: needs a known topic, a level in {LEVELS} and question text")
        points = raw.get("key_points")
        if not isinstance(points, list) or not 3 <= len(points) <= 5:
            raise BankError(f"{where}: needs 3 to 5 key points")
        key_points = []
        for point in points:
            groups = point.get("match") if isinstance(point, dict) else None
            if (
                not isinstance(point.get("point"), str)
                or not isinstance(groups, list)
                or not groups
                or not all(
                    isinstance(g, list) and g and all(isinstance(p, str) and p.strip() for p in g) for g in groups
                )
            ):
                raise BankError(f"{where}: each key point needs 'point' text and non-empty 'match' phrase groups")
            key_points.append(KeyPoint(point["point"], tuple(tuple(g) for g in groups)))
        seen.add(qid)
        questions.append(Question(qid, topic, level, text.strip(), tuple(key_points)))
    return Bank(dict(topics), tuple(questions))


def load_bank(path: Path = BANK_FILE) -> Bank:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BankError(f"cannot read the question bank {path}: {exc}") from exc
    return _parse(data)


@cache
def default_bank() -> Bank:
    """The shipped bank, read once per process."""
    return load_bank()
