"""Interviews that continue, without a call: which question comes next given a person's past interviews
(server/dialogue/bank.py), an interview handed its past (interview.py), and that past read back from a history
database (server/history/continuity.py)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.config import Settings
from server.dialogue.bank import Past
from server.dialogue.interview import Interview
from server.dialogue.judge import Judge
from server.dialogue.scorecard import Record
from server.history import continuity, db
from server.history.store import Store
from tests.interview_script import BANK
from tests.pg_cluster import Cluster

MID = [q for q in BANK.questions if q.level == "mid"]


def test_questions_asked_before_come_back_only_once_the_level_is_used_up():
    asked_before = tuple(q.id for q in MID[:-3])  # all but three of the level's questions
    past = Past(level="mid", asked=asked_before)
    rng = random.Random(1)
    picked = {BANK.pick(rng, "mid", set(), None, past).id for _ in range(50)}
    assert picked <= {q.id for q in MID[-3:]}
    # The level used up: the one asked longest ago comes back, at that level, rather than another level's.
    used_up = Past(level="mid", asked=tuple(q.id for q in MID))
    assert BANK.pick(rng, "mid", set(), None, used_up).id == MID[0].id
    assert BANK.pick(rng, "mid", {MID[0].id}, MID[0].topic, used_up).id == MID[1].id


def test_a_missed_topic_comes_first_and_once():
    for seed in range(20):
        rng = random.Random(seed)
        past = Past(level="senior", weak_topics=frozenset({"databases"}))
        first = BANK.pick(rng, "senior", set(), None, past)
        assert (first.topic, first.level) == ("databases", "senior")
        # It came back: the next question moves on to another topic, as an interview does.
        assert BANK.pick(rng, "senior", {first.id}, first.topic, past).topic != "databases"
    # Without a past, the first question lands on that topic only now and then.
    fresh = [BANK.pick(random.Random(seed), "senior", set(), None).topic for seed in range(200)]
    assert fresh.count("databases") < 100


def test_an_interview_handed_its_past_starts_at_the_level_it_ended_and_asks_nothing_again():
    past = Past(level="senior", asked=tuple(q.id for q in BANK.questions if q.level == "senior")[:10],
                weak_topics=frozenset({"coding"}))  # fmt: skip
    interview = Interview(BANK, Judge(), random.Random(3))
    interview.continue_from(past)
    first = interview.first_question()
    assert (interview.level, first.level, first.topic) == ("senior", "senior", "coding")
    assert first.id not in past.asked
    # A past that arrives after the first answers were judged keeps the level this interview reached.
    late = Interview(BANK, Judge(), random.Random(3))
    late.records.append(Record(late.first_question(), "correct"))  # an answer judged already
    late.continue_from(Past(level="junior"))
    assert late.level == "mid"
    assert Interview(BANK, Judge(), random.Random(3)).level == "mid"  # no past: today's start


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database: a file of the test's own, or a new database on a throwaway PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / db.SQLITE_FILE}"
    else:
        cluster: Cluster = request.getfixturevalue("postgres")  # (tests/conftest.py)
        url = db.database_url(Settings(database_url=await cluster.new_database()))
    await asyncio.to_thread(db.migrate, url)
    return url


async def test_the_past_is_read_from_the_profiles_own_interviews(url: str):
    qs = {q.id: q for q in BANK.questions}

    def row(qid: str, verdict: str) -> dict:
        q = qs[qid]
        return {"id": qid, "topic": q.topic, "level": q.level, "question": q.text, "verdict": verdict,
                "covered": [], "missed": [kp.point for kp in q.key_points] if verdict != "correct" else []}  # fmt: skip

    store = Store(db.create_engine(url))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        for i, (profile, card_level, questions) in enumerate([
            ("p:ann", "junior", [row("db-index", "wrong"), row("cc-hash-map", "correct"), row("bh-mistake", "partly")]),
            ("p:ann", "senior", [row("db-sql-nosql", "correct"), row("sd-caching", "skipped"),
                                 row("cd-ci", "unanswered")]),
            ("p:bob", "junior", [row("sd-cdn", "wrong")]),
        ]):  # fmt: skip
            await store.touch_profile(profile, "page", None, start)
            session = f"s{i}"
            await store.start_session(session, session, profile, "interview", "en", start + timedelta(hours=i))
            await store.save_questions(session, 0, questions)
            card = {"asked": 3, "answered": 2, "level": card_level, "totals": {}, "study_next": []}
            await store.save_scorecard(session, card, start)
        await store.start_session("chat", "chat", "p:ann", "chat", "en", start + timedelta(days=1))
        ann, bob, nobody = [await continuity.load(store.engine, p) for p in ("p:ann", "p:bob", "p:nobody")]
    finally:
        await store.close()
    assert ann.level == "senior"  # where the last interview ended
    assert ann.asked == ("db-index", "cc-hash-map", "bh-mistake", "db-sql-nosql", "sd-caching", "cd-ci")
    # databases was missed, then answered well; behavioural and system design were missed last time they came.
    assert ann.weak_topics == {"behavioural", "system_design"}
    assert (bob.level, bob.asked, bob.weak_topics) == ("junior", ("sd-cdn",), {"system_design"})
    assert nobody == Past()


def test_an_interview_started_over_carries_its_past_and_itself():
    interview = Interview(BANK, Judge(), random.Random(5))
    interview.continue_from(Past(level="mid", asked=("db-index", "cc-hash-map"), weak_topics=frozenset({"coding"})))
    first = interview.first_question()
    assert first.topic == "coding"
    interview.records.append(Record(first, "correct"))  # the missed topic, answered well now
    interview.level = "senior"
    second = BANK.by_id("bh-change")
    interview.records.append(Record(second, "wrong"))
    interview._ask(BANK.by_id("db-sharding"))  # on the table when the person started over
    carried = interview.carried()
    assert carried.level == "senior"
    assert carried.asked == ("db-index", "cc-hash-map", first.id, "bh-change", "db-sharding")
    assert carried.weak_topics == {"behavioural"}
    assert Interview(BANK, Judge()).carried() == Past()  # nothing asked, nothing read: nothing carried
