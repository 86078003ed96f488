"""The history's store, writer and recorder on a real SQLite file (no server, no call) and on a real PostgreSQL
server (a throwaway cluster, tests/pg_cluster.py): what a person would find in their records, the migrations
upgrading an old database in place, and a failing database costing records only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from server.config import Settings
from server.history import db
from server.history.api import retain
from server.history.export import to_json, to_markdown
from server.history.recorder import Recorder, profile_key
from server.history.store import Store
from server.history.writer import Counters, Writer
from server.signalling import OfferError, check_profile
from tests.pg_cluster import Cluster

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
QUESTION = {"id": "os-1", "topic": "operating systems", "level": "mid", "question": "What is a thread?",
            "verdict": "partly", "covered": ["shares memory"], "missed": ["has its own stack"]}  # fmt: skip
CARD = {"type": "scorecard", "questions": [QUESTION], "asked": 1, "answered": 1, "level": "mid",
        "totals": {"correct": 0, "partly": 1}, "study_next": ["Operating systems: has its own stack"]}  # fmt: skip


def sqlite_url(folder: Path) -> str:
    """The SQLite file a server with ``PARLEY_DATA_DIR=folder`` uses."""
    return db.database_url(Settings(data_dir=str(folder)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL: a file of the test's own, or a new database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    cluster: Cluster = request.getfixturevalue("postgres")
    return db.database_url(Settings(database_url=await cluster.new_database()))


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    await asyncio.to_thread(db.migrate, url)
    store = Store(db.create_engine(url))
    yield store
    await store.close()


async def a_session(
    store: Store, session_id: str = "call1", profile: str | None = "p:ann", days_ago: float = 0
) -> None:
    if profile is not None:
        await store.touch_profile(profile, "page", "Ann", NOW)
    await store.start_session(session_id, session_id, profile, "interview", "en", NOW - timedelta(days=days_ago))


async def test_a_session_reads_back_with_its_turns_questions_and_scorecard(store: Store):
    await a_session(store)
    await store.add_turn("call1", 1, "assistant", "Hello. What is a thread?", False, NOW)
    await store.add_turn("call1", 2, "user", "it shares memory", False, NOW)
    await store.add_turn("call1", 3, "assistant", "Right, and", True, NOW, {"response_ms": 640, "stt_ms": 120})
    await store.save_questions("call1", 0, [QUESTION])
    await store.save_scorecard("call1", CARD, NOW)
    await store.save_scorecard("call1", CARD | {"asked": 2}, NOW)  # the latest one wins
    await store.end_session("call1", "requested", NOW)
    await store.end_session("call1", "closed", NOW)  # the first end stands

    session = await store.get_session("call1")
    assert session is not None
    assert [(t["role"], t["text"], t["interrupted"]) for t in session["turns"]] == [
        ("assistant", "Hello. What is a thread?", False), ("user", "it shares memory", False),
        ("assistant", "Right, and", True),
    ]  # fmt: skip
    assert session["turns"][2]["response_ms"] == 640 and "response_ms" not in session["turns"][1]
    assert session["questions"][0]["missed"] == ["has its own stack"]
    assert session["scorecard"]["asked"] == 2 and session["scorecard"]["totals"]["partly"] == 1
    assert session["end_reason"] == "requested"
    assert session["started_at"] == NOW.isoformat()
    listed = await store.list_sessions("p:ann")
    assert [(s["id"], s["turns"]) for s in listed] == [("call1", 3)]


async def test_one_profile_lists_only_its_own_and_deleting_everything_of_one_keeps_the_others(store: Store):
    await a_session(store, "ann1", "p:ann")
    await a_session(store, "bob1", "u:bob")
    await store.add_turn("ann1", 1, "user", "hi", False, NOW)
    assert [s["id"] for s in await store.list_sessions("u:bob")] == ["bob1"]
    assert {s["id"] for s in await store.list_sessions(None, everyone=True)} == {"ann1", "bob1"}
    assert await store.delete_profile("p:ann") == 1
    assert await store.get_session("ann1") is None and await store.profile("p:ann") is None
    assert await store.get_session("bob1") is not None
    async with store.engine.connect() as raw:  # the turns went with their session
        assert (await raw.execute(text("SELECT count(*) FROM turns"))).scalar() == 0


async def test_retention_deletes_old_sessions_only(store: Store):
    await a_session(store, "old", days_ago=40)
    await a_session(store, "new", days_ago=1)
    assert await store.delete_older_than(NOW - timedelta(days=30)) == 1
    assert [s["id"] for s in await store.list_sessions("p:ann")] == ["new"]


async def test_exports_read_as_json_and_markdown(store: Store):
    await a_session(store)
    await store.add_turn("call1", 1, "user", "it shares   memory", False, NOW)
    await store.save_questions("call1", 0, [QUESTION])
    await store.save_scorecard("call1", CARD, NOW)
    sessions = await store.sessions_of("p:ann")
    assert json.loads(to_json(sessions))["sessions"][0]["turns"][0]["text"] == "it shares   memory"
    markdown = to_markdown(sessions)
    assert "**You:** it shares memory" in markdown
    assert "What is a thread? (operating systems, mid): **partly**" in markdown
    assert "missed: has its own stack" in markdown and "Study next:" in markdown


async def test_an_old_database_is_upgraded_in_place_and_keeps_its_records(url: str):
    await asyncio.to_thread(db.migrate, url, "0001")  # a database as the first release made it
    engine = db.create_engine(url)
    async with engine.begin() as raw:
        old = "'2026-01-01 10:00:00+00:00'"
        await raw.execute(text(f"INSERT INTO profiles VALUES ('p:old', 'page', 'Old', {old}, {old})"))
        await raw.execute(text(f"INSERT INTO sessions VALUES ('s-old', 's-old', 'p:old', 'chat', 'en', {old}, {old}, "
                               "'idle')"))  # fmt: skip
        await raw.execute(text("INSERT INTO turns (session_id, seq, role, text, interrupted, at) "
                               f"VALUES ('s-old', 1, 'user', 'still here?', false, {old})"))  # fmt: skip
    await engine.dispose()
    await asyncio.to_thread(db.migrate, url)
    store = Store(db.create_engine(url))
    try:
        session = await store.get_session("s-old")
        assert session is not None and session["turns"][0]["text"] == "still here?"
        assert session["end_reason"] == "idle" and session["scorecard"] is None
        await store.save_scorecard("s-old", CARD, NOW)  # the new tables are there
        assert (await store.get_session("s-old") or {})["scorecard"]["asked"] == 1
    finally:
        await store.close()


class Flaky:
    """A store whose writes fail while ``down`` (or hang, while ``slow``)."""

    def __init__(self) -> None:
        self.down = False
        self.slow = False
        self.written: list[str] = []

    async def note(self, text: str) -> None:
        if self.slow:
            await asyncio.sleep(60)
        if self.down:
            raise OSError("database unavailable")
        self.written.append(text)

    async def close(self) -> None:
        pass


async def test_a_failing_or_slow_database_costs_records_and_is_counted_never_the_caller():
    flaky, failed = Flaky(), []
    writer = Writer(flaky, Counters(failed.append), timeout_s=0.2)  # type: ignore[arg-type]
    writer.start()
    flaky.down = True
    writer.submit("note", text="lost")
    assert await writer.flush()
    flaky.down, flaky.slow = False, True
    writer.submit("note", text="too slow")
    assert await writer.flush()
    flaky.slow = False
    writer.submit("note", text="kept")
    assert await writer.flush()
    assert flaky.written == ["kept"] and failed == ["note", "note"] and writer.failures == 2
    await writer.close()


async def test_a_database_away_at_start_up_is_waited_for_and_the_writes_queued_meanwhile_go_in():
    flaky, failed, tries = Flaky(), [], []

    async def migrate() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise OSError("connection refused")

    writer = Writer(flaky, Counters(failed.append), ready=migrate, retry_s=0.01)  # type: ignore[arg-type]
    writer.submit("note", text="said while the database was away")
    writer.start()
    assert await writer.flush()
    assert flaky.written == ["said while the database was away"] and failed == ["migrate", "migrate"]
    await writer.close()


async def test_a_full_queue_drops_the_newest_write_and_counts_it():
    dropped: list[int] = []
    writer = Writer(Flaky(), Counters(dropped=lambda: dropped.append(1)), size=2)  # type: ignore[arg-type]
    for n in range(3):  # not started: nothing is taken off the queue
        writer.submit("note", text=str(n))
    assert writer.pending == 2 and len(dropped) == 1 and writer.dropped == 1


async def test_the_recorder_keeps_turns_as_heard_and_a_new_session_after_a_restart(store: Store):
    writer = Writer(store)
    writer.start()
    card = {"now": None}
    rec = Recorder(writer, "callX", profile_key("a" * 22, None), "Ann", "interview", "en", lambda: card["now"])
    rec.event({"type": "transcript", "role": "assistant", "text": "Hi. What is a thread?", "interrupted": False})
    rec.event({"type": "transcript", "role": "user", "text": "it shares", "interrupted": False})
    rec.event({"type": "metrics", "turn": 1, "stt_ms": 90, "llm_first_token_ms": 50, "llm_first_sentence_ms": 80,
               "tts_first_audio_ms": 40, "response_ms": 700})  # fmt: skip
    rec.event({"type": "transcript", "role": "assistant", "text": "Go on", "interrupted": True})
    # The person went on: their whole turn replaces the first half, and the reply cut in between goes.
    rec.event({"type": "transcript", "role": "user", "text": "it shares memory", "interrupted": False,
               "continues": True})  # fmt: skip
    card["now"] = CARD
    rec.event({"type": "transcript", "role": "assistant", "text": "Good.", "interrupted": False})
    rec.restart("chat", "fr")
    rec.event({"type": "transcript", "role": "assistant", "text": "Bonjour !", "interrupted": False})
    rec.event({"type": "ended", "reason": "idle"})
    rec.closed()
    assert await writer.flush()
    assert writer.failures == 0

    first = await store.get_session("callX")
    assert first is not None
    assert [(t["role"], t["text"]) for t in first["turns"]] == [
        ("assistant", "Hi. What is a thread?"), ("user", "it shares memory"), ("assistant", "Good."),
    ]  # fmt: skip
    assert first["questions"][0]["id"] == "os-1" and first["end_reason"] == "restarted"
    second = await store.get_session("callX.2")
    assert second is not None and (second["mode"], second["language"], second["end_reason"]) == ("chat", "fr", "idle")
    profile = profile_key("a" * 22, None)
    assert profile is not None and second["profile"] == profile[0]
    assert (await store.profile(profile[0]) or {})["display_name"] == "Ann"
    await writer.close()


def test_a_call_token_user_wins_over_the_page_profile_which_is_kept_only_hashed():
    assert profile_key("x" * 20, "alice") == ("u:alice", "app")
    key = profile_key("x" * 20, None)
    assert key is not None and "x" * 20 not in key[0] and key[1] == "page"
    assert profile_key(None, None) is None


@pytest.mark.parametrize(
    ("profile", "name"),
    [("short", None), ("x" * 129, None), ("has space in it 1234", None), (12345678901234567, None),
     ("a" * 20, ""), ("a" * 20, "n" * 65), ("a" * 20, "line\nbreak"), ("a" * 20, 5)],
)  # fmt: skip
def test_an_unusable_profile_or_display_name_is_refused_in_words(profile: object, name: object):
    with pytest.raises(OfferError, match="profile|display_name"):
        check_profile(profile, name)


def test_the_database_is_sqlite_in_the_data_folder_unless_a_url_says_postgresql(tmp_path: Path):
    assert sqlite_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path / db.SQLITE_FILE}"
    postgres = Settings(database_url="postgresql://parley:pw@127.0.0.1/parley")
    assert db.database_url(postgres) == "postgresql+asyncpg://parley:pw@127.0.0.1/parley"
    with pytest.raises(ValueError, match="PARLEY_DATABASE_URL"):
        Settings.from_env({"PARLEY_DATABASE_URL": "mysql://x"})
    with pytest.raises(ValueError, match="PARLEY_RETENTION_DAYS"):
        Settings.from_env({"PARLEY_RETENTION_DAYS": "-1"})


async def test_retention_runs_by_itself_through_the_writer(store: Store):
    await a_session(store, "ancient", days_ago=400)
    await store.start_session("today", "today", "p:ann", "chat", "en", datetime.now(UTC))
    writer, ready = Writer(store), asyncio.Event()
    writer.start()
    ready.set()
    task = asyncio.get_running_loop().create_task(retain(writer, 30, ready, every_s=0.05))
    try:
        for _ in range(100):
            if len(await store.list_sessions("p:ann")) == 1:
                break
            await asyncio.sleep(0.05)
        assert [s["id"] for s in await store.list_sessions("p:ann")] == ["today"]
    finally:
        task.cancel()
        await writer.close()
