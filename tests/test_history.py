"""Calls recorded as they go (server/history/), over real WebRTC (aiortc on both sides) with scripted providers:
both sides' turns and the end reason, read back through the /history API; nobody else can read them; export and
delete; the database locked mid-call while the call goes on; a call token's user owning its records; a server
process killed mid-call (on SQLite and on PostgreSQL) losing at most the turn in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from alembic.script import ScriptDirectory

from bench.serverproc import ServerProcess
from parley.rtc import CallClient
from server.app import create_app
from server.config import Settings
from server.history import db
from server.history.api import PROFILE_HEADER, WRITER
from server.history.recorder import profile_key
from server.history.store import Store
from server.ice import use_loopback_only
from tests.fake_openai import KEY as OPENAI_KEY
from tests.fake_openai import FakeOpenAI
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import client_offer, is_, until
from tests.interview_script import answer, question_at_end

ANN = "ann-profile-0123456789abcdef"
BOB = "bob-profile-0123456789abcdef"
KEY = "k" * 40
API_KEY = "app-api-key-history"


class ProfileCall(CallClient):
    """A call the way the page places one: with its profile id and display name in the offer."""

    def __init__(
        self, url: str, profile: str | None, display_name: str | None = None, mode: str = "chat", **kwargs: Any
    ) -> None:
        super().__init__(url, mode, **kwargs)
        self.profile, self.display_name = profile, display_name

    async def connect(self, timeout: float = 20.0) -> None:
        body = {"mode": self.mode, "profile": self.profile, "display_name": self.display_name}
        data = await self._negotiate("/offer", {k: v for k, v in body.items() if v is not None}, timeout)
        self.session_id, self.reconnect_secret = data["session_id"], data.get("reconnect_secret")


@pytest.fixture
async def calls() -> Any:
    opened: list[CallClient] = []

    async def place(url: str, profile: str | None, display_name: str | None = None, **kwargs: Any) -> ProfileCall:
        call = ProfileCall(url, profile, display_name, **kwargs)  # (mode= too)
        opened.append(call)
        await call.connect()
        await call.wait_listening(30)
        return call

    yield place
    for call in opened:
        await call.close()


async def typed_turn(call: CallClient, text: str, timeout: float = 15.0) -> float:
    """Types ``text``; returns how long the reply's transcript took to come."""
    sent = time.monotonic()
    call.send({"type": "text", "text": text})
    await call.wait_for(is_("transcript", role="user", text=text), timeout, sent)
    answered, _ = await call.wait_for(is_("transcript", role="assistant"), timeout, sent)
    return answered - sent


async def api(url: str, method: str, path: str, profile: str | None = None, bearer: str | None = None):
    headers = {PROFILE_HEADER: profile} if profile else {}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    async with aiohttp.ClientSession() as http, http.request(method, url + path, headers=headers) as resp:
        body = await resp.text()
        return resp.status, resp.headers, body


async def api_json(url: str, method: str, path: str, profile: str | None = None, bearer: str | None = None) -> Any:
    import json

    status, _, body = await api(url, method, path, profile, bearer)
    return status, json.loads(body)


async def test_a_call_is_recorded_and_only_its_person_reads_exports_and_deletes_it(
    start_server, started_apps, calls, tmp_path: Path
):
    llm = FakeLLM("Threads share their process's memory.", "Glad to help.")
    settings = Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(tmp_path))
    url = await start_server(fake_providers(llm=llm), settings)
    call = await calls(url, ANN, "Ann")
    await typed_turn(call, "what is a thread")
    await call.end()
    second = await calls(url, ANN)  # a second call, greeting only
    await second.end()
    await started_apps[-1][WRITER].flush()

    status, listed = await api_json(url, "GET", "/history/sessions", ANN)
    assert status == 200 and [s["id"] for s in listed["sessions"]] == [second.session_id, call.session_id]
    status, one = await api_json(url, "GET", f"/history/sessions/{call.session_id}", ANN)
    assert status == 200 and (one["mode"], one["end_reason"]) == ("chat", "requested")
    said = [(t["role"], t["text"]) for t in one["turns"]]
    assert said[1:] == [("user", "what is a thread"), ("assistant", "Threads share their process's memory.")]
    assert said[0][0] == "assistant"  # the greeting, as heard
    assert one["turns"][2]["response_ms"] > 0 and "stt_ms" not in one["turns"][2]  # typed: no transcription
    assert (await api_json(url, "GET", "/history/profile", ANN))[1]["display_name"] == "Ann"

    # Another profile, or nobody, reads nothing of it: not even whether it exists.
    assert await api_json(url, "GET", "/history/sessions", BOB) == (200, {"sessions": []})
    for method, path in [("GET", ""), ("GET", "/export"), ("DELETE", "")]:
        status, _ = await api_json(url, method, f"/history/sessions/{call.session_id}{path}", BOB)
        assert status == 404, (method, path)
    assert (await api_json(url, "GET", "/history/sessions"))[0] == 401
    assert (await api_json(url, "GET", "/history/sessions", "short"))[0] == 400

    status, headers, markdown = await api(url, "GET", f"/history/sessions/{call.session_id}/export?format=markdown",
                                          ANN)  # fmt: skip
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert "**You:** what is a thread" in markdown and "**Parley:** Threads share" in markdown
    status, everything = await api_json(url, "GET", "/history/export?format=json", ANN)
    assert status == 200 and len(everything["sessions"]) == 2
    assert (await api_json(url, "GET", "/history/export?format=pdf", ANN))[0] == 400

    assert await api_json(url, "DELETE", f"/history/sessions/{second.session_id}", ANN) == (
        200, {"deleted": second.session_id}
    )  # fmt: skip
    assert (await api_json(url, "GET", f"/history/sessions/{second.session_id}", ANN))[0] == 404
    assert await api_json(url, "DELETE", "/history", ANN) == (200, {"deleted_sessions": 1})
    assert await api_json(url, "GET", "/history/sessions", ANN) == (200, {"sessions": []})
    assert (await api_json(url, "GET", "/history/profile", ANN))[1]["display_name"] is None


async def test_the_database_locked_mid_call_the_call_goes_on_and_the_failure_is_counted(
    start_server, started_apps, calls, tmp_path: Path
):
    llm = FakeLLM("First answer.", "Second answer.", "Third answer.")
    settings = Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(tmp_path))
    url = await start_server(fake_providers(llm=llm), settings)
    call = await calls(url, ANN)
    writer = started_apps[-1][WRITER]
    await writer.flush()

    # Another process holds the database (a long backup, a disk gone read-only, a server away): writes fail.
    lock = sqlite3.connect(tmp_path / db.SQLITE_FILE, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        took = await typed_turn(call, "first question")
        print(f"reply with the database locked: {took:.2f} s")
        await until(lambda: writer.failures > 0, 30)
        took = await typed_turn(call, "second question")  # the next turn is answered too
        status, refused = await api_json(url, "GET", "/history/sessions", ANN)  # a read says so, in JSON
        assert status == 503 and "unavailable" in refused["error"]
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        metrics = await resp.text()
    failed = [line for line in metrics.splitlines() if line.startswith("parley_history_failures_total{")]
    assert failed and sum(float(line.rsplit(" ", 1)[1]) for line in failed) >= 1, failed

    await typed_turn(call, "third question")  # the database is back: recorded again
    await call.end()
    await writer.flush(30)
    status, one = await api_json(url, "GET", f"/history/sessions/{call.session_id}", ANN)
    assert status == 200 and one["end_reason"] == "requested"
    assert ("assistant", "Third answer.") in [(t["role"], t["text"]) for t in one["turns"]]


async def test_a_call_tokens_user_owns_the_records_and_a_server_key_reads_everyones(
    start_server, started_apps, calls, tmp_path: Path
):
    settings = Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(tmp_path),
                        signing_keys=KEY, api_keys=API_KEY)  # fmt: skip
    url = await start_server(fake_providers(), settings)

    async def token(user: str) -> str:
        async with (
            aiohttp.ClientSession() as http,
            http.post(url + "/tokens", json={"user": user}, headers={"Authorization": f"Bearer {API_KEY}"}) as resp,
        ):
            return (await resp.json())["token"]

    spent = await token("alice")
    call = await calls(url, ANN, token=spent)  # the page's profile too: the token's user wins
    await call.end()
    await started_apps[-1][WRITER].flush()

    status, listed = await api_json(url, "GET", "/history/sessions", bearer=await token("alice"))
    assert status == 200 and [s["id"] for s in listed["sessions"]] == [call.session_id]
    assert listed["sessions"][0]["profile"] == "u:alice"
    assert await api_json(url, "GET", "/history/sessions", bearer=await token("bob")) == (200, {"sessions": []})
    assert (await api_json(url, "GET", f"/history/sessions/{call.session_id}", bearer=await token("bob")))[0] == 404
    assert (await api_json(url, "GET", "/history/sessions", ANN))[0] == 401  # calls need a bearer here: so does this
    assert (await api_json(url, "GET", "/history/sessions", bearer=spent))[0] == 401  # used for the call
    # A server key with the page's header reads that profile's only: the token's user won, so nothing is there.
    status, headers, body = await api(url, "GET", "/history/sessions", ANN, bearer=API_KEY)
    assert (status, body) == (200, '{"sessions": []}')
    status, everyone = await api_json(url, "GET", "/history/sessions", bearer=API_KEY)
    assert status == 200 and [s["id"] for s in everyone["sessions"]] == [call.session_id]
    assert (await api_json(url, "DELETE", "/history", bearer=API_KEY))[0] == 400  # not everyone's at once
    assert await api_json(url, "DELETE", "/history?profile=u:alice", bearer=API_KEY) == (200, {"deleted_sessions": 1})


LONG_REPLY = (
    "Let me explain this slowly and carefully. A process owns its memory and its resources. "
    "A thread runs inside a process and shares that memory with the other threads. "
    "That is why threads are cheaper to start but need locks. Does that make sense to you?"
)


def settings_in(folder: Path) -> Settings:
    return Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(folder))


async def test_an_interrupted_reply_is_recorded_as_it_was_heard(start_server, started_apps, calls, tmp_path: Path):
    llm = FakeLLM(LONG_REPLY, "Sure, switching topics.")
    url = await start_server(fake_providers(llm=llm), settings_in(tmp_path))
    call = await calls(url, ANN)
    sent = time.monotonic()
    call.send({"type": "text", "text": "explain threads"})
    speaking_t, _ = await call.wait_for(is_("state", state="speaking"), 10, sent)
    await asyncio.sleep(1.0)
    call.send({"type": "text", "text": "actually, something else"})
    _, cut = await call.wait_for(is_("interrupted"), 5, speaking_t)
    await call.wait_for(is_("transcript", role="assistant", interrupted=False), 10, speaking_t)
    await call.end()
    await started_apps[-1][WRITER].flush()

    _, one = await api_json(url, "GET", f"/history/sessions/{call.session_id}", ANN)
    said = [(t["role"], t["text"], t["interrupted"]) for t in one["turns"]][1:]
    assert said == [
        ("user", "explain threads", False), ("assistant", cut["heard"], True),
        ("user", "actually, something else", False), ("assistant", "Sure, switching topics.", False),
    ]  # fmt: skip
    assert cut["heard"] and len(cut["heard"]) < len(LONG_REPLY) // 2


async def test_an_interview_keeps_each_question_as_judged_and_a_mode_change_starts_a_new_session(
    start_server, started_apps, calls, tmp_path: Path
):
    url = await start_server(fake_providers(), settings_in(tmp_path))
    call = await calls(url, ANN, mode="interview")
    _, greeting = call.find(is_("transcript", role="assistant")) or (0, {})
    question = question_at_end(greeting["text"])
    assert question is not None, greeting
    said, covered = answer(question, "partial")
    sent = time.monotonic()
    call.send({"type": "text", "text": said})
    await call.wait_for(is_("transcript", role="assistant", interrupted=False), 20, sent)
    writer = started_apps[-1][WRITER]
    await writer.flush()

    # Kept as the call goes: the answer's verdict is in the record before the call ends.
    _, one = await api_json(url, "GET", f"/history/sessions/{call.session_id}", ANN)
    first = one["questions"][0]
    assert (first["question"], first["verdict"]) == (question.text, "partly")
    assert first["covered"] == [question.key_points[i].point for i in covered] and first["missed"]
    assert one["questions"][1]["verdict"] == "unanswered"  # the next question, asked
    assert one["scorecard"]["asked"] == 2 and one["scorecard"]["answered"] == 1 and one["ended_at"] is None

    switched = time.monotonic()
    call.send({"type": "mode", "mode": "chat", "language": "fr"})
    await call.wait_listening(30, switched)
    await call.end()
    await writer.flush()
    _, listed = await api_json(url, "GET", "/history/sessions", ANN)
    assert [(s["id"], s["mode"], s["language"], s["end_reason"]) for s in listed["sessions"]] == [
        (f"{call.session_id}.2", "chat", "fr", "requested"), (call.session_id, "interview", "en", "restarted"),
    ]  # fmt: skip


@pytest.fixture
async def remote_env() -> AsyncIterator[dict[str, str]]:
    """Every stage on a local OpenAI-compatible fake, so the server process starts in seconds."""
    fake = await FakeOpenAI(reply="Noted. Tell me more.").start()
    yield {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai",
           "PARLEY_LLM": "openai", "PARLEY_TTS": "openai", "PARLEY_HANGOVER_MS": "500"}  # fmt: skip
    await fake.close()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_a_server_killed_mid_call_loses_at_most_the_turn_in_flight(
    database: str, remote_env: dict[str, str], request: pytest.FixtureRequest, tmp_path: Path
):
    env = {**remote_env, "PARLEY_DATA_DIR": str(tmp_path)}
    if database == "postgresql":
        env["PARLEY_DATABASE_URL"] = await request.getfixturevalue("postgres").new_database()
    use_loopback_only()
    server = ServerProcess(env)
    server.start()
    call = ProfileCall(server.url, ANN, "Ann")
    try:
        await server.wait_healthy(120)
        await call.connect()
        await call.wait_listening(30)
        for text in ("first answer", "second answer"):
            await typed_turn(call, text)
        await asyncio.sleep(0.5)  # what has been said and heard has been written by now (a write takes ms)
        call.send({"type": "text", "text": "the turn in flight"})
        server.signal(signal.SIGKILL)
        await asyncio.sleep(0.5)
        assert server.exit_code() is not None
    finally:
        await call.close()
        server.stop()

    settings = Settings(data_dir=str(tmp_path), database_url=env.get("PARLEY_DATABASE_URL", ""))
    store = Store(db.create_engine(db.database_url(settings)))
    try:
        session = await store.get_session(call.session_id or "")
        profile = profile_key(ANN, None)
        assert session is not None and profile is not None and session["profile"] == profile[0]
        said = [(t["role"], t["text"]) for t in session["turns"]]
        assert said[1:5] == [("user", "first answer"), ("assistant", "Noted. Tell me more."),
                             ("user", "second answer"), ("assistant", "Noted. Tell me more.")]  # fmt: skip
        assert session["ended_at"] is None  # it never ended: cut by the crash
    finally:
        await store.close()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_workers_starting_together_upgrade_one_database_once(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
):
    env = {**os.environ, "PARLEY_DATA_DIR": str(tmp_path)}
    if database == "postgresql":
        env["PARLEY_DATABASE_URL"] = await request.getfixturevalue("postgres").new_database()
    command = [sys.executable, "-m", "server.history", "upgrade"]
    workers = [await asyncio.create_subprocess_exec(*command, env=env, stdout=PIPE, stderr=STDOUT) for _ in range(4)]
    outputs = [(await worker.communicate())[0].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], outputs
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert head and all(out.strip().endswith(head) for out in outputs), outputs


async def test_with_the_history_off_nothing_is_kept_and_the_api_says_so(aiohttp_client, tmp_path: Path):
    app = create_app(Settings(ice_loopback=True, history="off", data_dir=str(tmp_path)), lambda _s: fake_providers())
    client = await aiohttp_client(app)
    resp = await client.get("/history/sessions", headers={PROFILE_HEADER: ANN})
    assert resp.status == 404 and "PARLEY_HISTORY=off" in (await resp.json())["error"]
    assert WRITER not in app and not os.listdir(tmp_path)


async def test_an_offer_with_an_unusable_profile_is_refused_in_words(aiohttp_client, tmp_path: Path):
    app = create_app(Settings(ice_loopback=True, data_dir=str(tmp_path)), lambda _s: fake_providers())
    client = await aiohttp_client(app)
    sdp = await client_offer()
    for fields in ({"profile": "short"}, {"profile": ANN, "display_name": "x" * 65}, {"profile": 12}):
        resp = await client.post("/offer", json={"sdp": sdp, "type": "offer", **fields})
        assert resp.status == 400, fields
        assert "profile" in (error := (await resp.json())["error"]) or "display_name" in error


async def test_another_site_allowed_to_place_calls_may_read_and_delete_records(aiohttp_client, tmp_path: Path):
    site = "https://app.example.com"
    settings = Settings(ice_loopback=True, data_dir=str(tmp_path), cors_origins=site)
    client = await aiohttp_client(create_app(settings, lambda _s: fake_providers()))
    asked = {"Origin": site, "Access-Control-Request-Method": "DELETE",
             "Access-Control-Request-Headers": PROFILE_HEADER}  # fmt: skip
    preflight = await client.options("/history", headers=asked)
    assert preflight.status == 204 and "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    assert PROFILE_HEADER in preflight.headers["Access-Control-Allow-Headers"]
    resp = await client.delete("/history", headers={"Origin": site, PROFILE_HEADER: ANN})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == site
    assert await resp.json() == {"deleted_sessions": 0}
