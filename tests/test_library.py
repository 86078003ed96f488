"""The Python library (``parley``), against a real server process whose three stages are the OpenAI-compatible
fake: ``async with parley.connect(...)``, typed events as they arrive, typed and spoken turns answered, the
interview's scorecard from ``end()``, the bot's audio, a dropped connection taken up again, and the command line
(``python -m client``) built on it. The first tests read only the event types (fast tier)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

import parley
from bench.serverproc import ServerProcess
from parley import call_cli
from parley.audio import SILENCE_DBFS, as_pcm16, dbfs, read_wav
from parley.events import KINDS, parse
from server.protocol import SERVER_EVENTS
from tests.fake_openai import KEY, FakeOpenAI
from tests.helpers import ROOT

FAKE_REPLY = "Hello there. How are you today?"  # what the fake chat model says to everything
FAKE_HEARD = "hello from the fake"  # what the fake transcriber hears in any speech


# -- the event types (fast) -------------------------------------------------------------------------------------
def test_every_kind_the_server_sends_has_a_type_with_its_fields():
    for kind, typed_dict in SERVER_EVENTS.items():
        cls = KINDS.get(kind)
        assert cls is not None, f"no event type for {kind!r}"
        wire = set(typed_dict.__annotations__) - {"type"}
        ours = {f.name for f in dataclasses.fields(cls)} - {"at", "raw"}
        assert ours == wire, f"{kind}: {sorted(ours ^ wire)}"


def test_the_protocol_pages_examples_arrive_typed():
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    examples = [json.loads(line) for block in re.findall(r"```json\n(.*?)```", text, re.S) for line in block.split("\n")
                if line.strip()]  # fmt: skip
    for raw in examples:
        if raw["type"] not in SERVER_EVENTS or raw == {"type": "scorecard"}:
            continue  # (client to server; ``scorecard`` is both: this is the request)
        event = parse(raw, 1.5)
        assert type(event) is KINDS[raw["type"]], raw
        assert event.at == 1.5 and event.raw == raw
    card = parse(next(e for e in examples if e["type"] == "scorecard" and "questions" in e))
    assert isinstance(card, parley.Scorecard) and card.questions[0].verdict == "partly"
    assert card.questions[0].missed == ("it slows down writes",)


def test_an_unknown_or_unreadable_event_still_arrives_with_its_fields():
    newer = parse({"type": "emotion", "mood": "curious"})
    assert isinstance(newer, parley.UnknownEvent) and newer.type == "emotion" and newer.raw["mood"] == "curious"
    broken = parse({"type": "transcript", "role": "user"})  # no text
    assert isinstance(broken, parley.UnknownEvent) and broken.type == "transcript"
    extended = parse({"type": "ended", "reason": "idle", "after_s": 300})  # a field added later
    assert extended == parley.Ended(reason="idle") and extended.raw["after_s"] == 300


def test_audio_to_play_may_be_floats_or_several_channels():
    floats = np.array([0.5, -1.5, 0.0], dtype=np.float32)  # out of range: clipped
    assert as_pcm16(floats).tolist() == [16384, -32767, 0]
    stereo = np.array([[1000, 3000], [-200, -400]], dtype=np.int16)
    assert as_pcm16(stereo).tolist() == [2000, -300]
    with pytest.raises(TypeError, match="integer samples or floats"):
        as_pcm16(np.array(["loud"]))


def test_the_command_line_takes_its_arguments_and_names_a_clip_it_cannot_read(tmp_path: Path, capsys):
    missing = tmp_path / "nowhere.wav"
    assert call_cli.main(["--wav", str(missing), "--url", "http://127.0.0.1:9"]) == 1
    error = json.loads(capsys.readouterr().err)
    assert error["type"] == "client_error" and str(missing) in error["message"]
    with pytest.raises(SystemExit) as usage:
        call_cli.main(["--mode", "karaoke"])
    assert usage.value.code == 2 and "--wav" in capsys.readouterr().err


# -- calls to a server process ---------------------------------------------------------------------------------
@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def library_server() -> AsyncIterator[ServerProcess]:
    """One server for the module, every stage on the OpenAI-compatible fake (it starts in seconds)."""
    fake = await FakeOpenAI(transcript=FAKE_HEARD, reply=FAKE_REPLY).start()
    process = ServerProcess({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai",
                             "PARLEY_LLM": "openai", "PARLEY_TTS": "openai", "PARLEY_HANGOVER_MS": "500"})  # fmt: skip
    process.start()
    try:
        await process.wait_healthy(120)
        yield process
    finally:
        process.stop()
        await fake.close()


@pytest.fixture(scope="module")
def spoken_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence said by espeak-ng (22.05 kHz: ``play_wav`` resamples it)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    path = tmp_path_factory.mktemp("clip") / "question.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "What does an index cost in a database?"], check=True)
    return path


@pytest.mark.asyncio(loop_scope="module")
async def test_an_interview_through_the_library(library_server: ServerProcess, spoken_clip: Path, tmp_path: Path):
    seen: list[parley.Event] = []
    async with parley.connect(library_server.url, mode="interview", language="en", on_event=seen.append) as call:
        greeting = await call.greeting()
        assert greeting and all(isinstance(t, parley.Transcript) and t.role == "assistant" for t in greeting)
        assert greeting[0].text.strip()
        ready = call.history[0]
        assert isinstance(ready, parley.Ready) and ready.session_id == call.session_id and ready.mode == "interview"

        repeated = await call.ask("Can you repeat the question?")  # the interview says its question again
        assert repeated.text.strip() and not repeated.interrupted

        started = await call.play_wav(spoken_clip)  # returns once the clip has been sent
        assert started > repeated.at
        heard = await call.wait_for(parley.Transcript, role="user", since=started, timeout=20)
        assert heard.text == FAKE_HEARD  # the server's VAD found a turn in the clip, and the transcriber got it
        answer = await call.wait_for(parley.Transcript, role="assistant", since=heard, timeout=20)
        assert answer.text.strip()
        metrics = [e for e in call.history if isinstance(e, parley.Metrics)]
        assert [m.turn for m in metrics][:2] == [1, 2] and metrics[0].stt_ms is None and metrics[1].stt_ms is not None

        card = await call.end()
        assert isinstance(card, parley.Scorecard) and card.asked >= 1
        assert card.questions[0].question and card.questions[0].question in repeated.text
        assert call.ended and isinstance(call.history[-1], parley.Ended)
        assert call.history[-1].reason == "requested"

    assert seen == call.history  # on_event saw every event, typed, in order
    kinds = {type(e) for e in seen}
    assert {parley.State, parley.Caption, parley.Speech} <= kinds and parley.UnknownEvent not in kinds
    assert dbfs(call.audio) > SILENCE_DBFS and call.audio.size > 48_000  # the bot's speech came back
    call.save_wav(tmp_path / "bot.wav")
    assert np.array_equal(read_wav(tmp_path / "bot.wav"), call.audio)


def examples() -> dict[str, str]:
    """The examples a developer copies: the package's docstring and the first one of docs/python.md."""
    assert parley.__doc__ is not None
    docs = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    return {
        "docstring": textwrap.dedent(parley.__doc__.split("Example::\n")[1].split("\nEvents arrive")[0]),
        "python.md": re.findall(r"```python\n(.*?)```", docs, re.S)[0],
    }


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("source", ["docstring", "python.md"])
async def test_the_examples_run(library_server: ServerProcess, spoken_clip: Path, tmp_path: Path, capsys, source):
    example = examples()[source].replace("asyncio.run(main())", "")
    example = example.replace("http://127.0.0.1:8080", library_server.url)
    example = example.replace('"answer.wav"', repr(str(spoken_clip)))
    example = example.replace('"bot.wav"', repr(str(tmp_path / "b.wav")))
    namespace: dict = {}
    exec(compile(example, source, "exec"), namespace)
    await namespace["main"]()
    printed = capsys.readouterr().out
    assert printed.count("bot: ") >= 2  # the greeting and the reply to the clip
    card = {"docstring": r"Scorecard\(.*asked=2", "python.md": r"\n2 \['\w+', 'unanswered'\]"}[source]
    assert re.search(card, printed), printed  # asked 2: the clip was taken as the answer to the first question
    assert (tmp_path / "b.wav").stat().st_size > 48_000


@pytest.mark.asyncio(loop_scope="module")
async def test_events_iterate_until_the_call_ends(library_server: ServerProcess):
    call = await parley.connect(library_server.url, mode="chat")
    try:

        async def read_all() -> list[parley.Event]:
            return [event async for event in call]

        reader = asyncio.create_task(read_all())
        await call.greeting()
        call.send_text("What is a thread?")
        assert (await call.wait_for(parley.Transcript, role="assistant")).text.strip() == FAKE_REPLY
        assert await call.end() is None  # no scorecard outside an interview
        events = await asyncio.wait_for(reader, 5)  # the iterator ended with the call
    finally:
        await call.close()
    assert isinstance(events[0], parley.Ready) and isinstance(events[-1], parley.Ended)
    assert events == call.history
    with pytest.raises(parley.CallEnded):
        call.send_text("anyone there?")
    with pytest.raises(ValueError, match="1 to 2000"):
        call.send_text("x" * 2001)


@pytest.mark.asyncio(loop_scope="module")
async def test_controls_and_requests_are_answered_by_the_server(library_server: ServerProcess):
    async with parley.connect(library_server.url, mode="chat") as call:
        await call.greeting()
        muted = await call.mute()
        assert muted.muted and not muted.held and call.rtc.mic.muted
        held = await call.hold()
        assert held.held and held.muted
        released = await call.hold(False)
        assert not released.held
        with pytest.raises(parley.ServerError, match="no interview") as refused:
            await call.scorecard()  # a chat has none: the server says so, and the call goes on
        assert refused.value.code == "bad_message"
        ready = await call.set_mode("interview")
        assert ready.mode == call.mode == "interview" and ready.session_id == call.session_id
        assert isinstance(await call.scorecard(), parley.Scorecard)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_dropped_connection_is_taken_up_again(library_server: ServerProcess, spoken_clip: Path):
    async with parley.connect(library_server.url, mode="chat") as call:
        await call.greeting()
        before = call.session_id
        await call.rtc.pc.close()  # as if the network went away under the call
        await call.wait_for(parley.Ready, since=call.history[0], session_id=before, timeout=20)
        assert any(isinstance(e, parley.Reconnecting) for e in call.history)
        assert (await call.ask("Are you still there?")).text.strip() == FAKE_REPLY
        assert call.session_id == before
        started = await call.play_wav(spoken_clip)  # the microphone goes on over the new connection
        heard = await call.wait_for(parley.Transcript, role="user", since=started, timeout=20)
        assert heard.text == FAKE_HEARD


@pytest.mark.asyncio(loop_scope="module")
async def test_a_call_whose_server_died_is_lost(library_server: ServerProcess):
    fake = await FakeOpenAI().start()
    doomed = ServerProcess({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai",
                            "PARLEY_LLM": "openai", "PARLEY_TTS": "openai"})  # fmt: skip
    doomed.start()
    try:
        await doomed.wait_healthy(120)
        async with parley.connect(doomed.url, mode="chat") as call:
            await call.greeting()
            doomed.signal(signal.SIGKILL)  # a crash: nothing more is sent, not even ``ended``
            with pytest.raises(parley.CallEnded) as ended:
                await call.wait_for(parley.Transcript, timeout=30)
            assert isinstance(ended.value.event, parley.Lost) and "resume" in ended.value.event.reason
            assert [type(e) for e in call.history[-2:]] == [parley.Reconnecting, parley.Lost]
            assert [e async for e in call.events()][-1] is ended.value.event  # the iterator ends there
            assert call.ended
    finally:
        doomed.stop()
        await fake.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_refused_call_says_why(library_server: ServerProcess):
    with pytest.raises(parley.Refused, match=r"\(400\)") as refused:
        async with parley.connect(library_server.url, mode="karaoke"):
            pass
    assert refused.value.status == 400 and "mode" in refused.value.error


@pytest.mark.asyncio(loop_scope="module")
async def test_the_command_line_places_a_call(library_server: ServerProcess, spoken_clip: Path, tmp_path: Path):
    out = tmp_path / "reply.wav"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client", "--wav", str(spoken_clip), "--out", str(out), "--url", library_server.url,
        "--mode", "chat", "--timeout", "30", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    events = [json.loads(line) for line in stdout.decode().splitlines()]
    assert events[0]["type"] == "ready" and events[-1] == {"type": "ended", "reason": "requested"}
    said = [(e["role"], e["text"].strip()) for e in events if e["type"] == "transcript"]
    assert ("user", FAKE_HEARD) in said and said[-1] == ("assistant", FAKE_REPLY)
    assert dbfs(read_wav(out)) > SILENCE_DBFS
