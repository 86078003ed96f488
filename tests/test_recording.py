"""Recording a call (server/history/recording.py), over real WebRTC with scripted providers: with the server's
recording on and the person's consent, both sides are saved as Opus in Ogg, served to the session's owner only and
deleted with the session; without consent, or with the server's recording off, nothing is saved. In Chromium: the
call page's box, unticked, and the history page's player."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from parley.audio import RATE, write_wav
from parley.rtc import CallClient
from server.config import Settings
from server.history.api import PROFILE_HEADER, WRITER, retain
from server.history.recording import path_for
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import client_offer, is_, until
from tests.page_probe import CHROMIUM, FLAGS
from tests.test_call_page import start_call

ANN = "ann-profile-0123456789abcdef"
BOB = "bob-profile-0123456789abcdef"


class ConsentingCall(CallClient):
    """A call the way the page places one, with its profile and (when ticked) the recording's consent."""

    def __init__(self, url: str, record: bool | None) -> None:
        super().__init__(url, "chat")
        self.record = record

    async def connect(self, timeout: float = 20.0) -> None:
        body: dict[str, Any] = {"mode": "chat", "profile": ANN}
        if self.record is not None:
            body["record"] = self.record
        data = await self._negotiate("/offer", body, timeout)
        self.session_id = data["session_id"]


@pytest.fixture
async def calls() -> Any:
    opened: list[CallClient] = []

    async def place(url: str, record: bool | None) -> ConsentingCall:
        call = ConsentingCall(url, record)
        opened.append(call)
        await call.connect()
        await call.wait_listening(30)
        return call

    yield place
    for call in opened:
        await call.close()


async def get(url: str, path: str, profile: str | None = ANN, method: str = "GET") -> tuple[int, str, bytes]:
    headers = {PROFILE_HEADER: profile} if profile else {}
    async with aiohttp.ClientSession() as http, http.request(method, url + path, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def settings(folder: Path, recording: str) -> Settings:
    return Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(folder), recording=recording)


async def test_a_consenting_call_is_recorded_both_sides_for_its_person_only_and_deleted_with_it(
    start_server, started_apps, calls, tmp_path: Path
):
    url = await start_server(fake_providers(llm=FakeLLM("Threads share their process's memory.")),
                             settings(tmp_path, "on"))  # fmt: skip
    async with aiohttp.ClientSession() as http, http.get(url + "/languages") as resp:
        assert (await resp.json())["recording"] is True
    call = await calls(url, True)
    began = time.monotonic()
    # The person hums a quiet tone (not speech to the VAD) while the bot answers a typed turn with its own tone.
    t = np.arange(RATE * 2) / RATE
    call.mic.play((0.1 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16))
    call.send({"type": "text", "text": "what is a thread"})
    await call.wait_for(is_("transcript", role="assistant"), 15)
    await call.mic.finished.wait()
    await call.end()
    lasted = time.monotonic() - began
    await started_apps[-1][WRITER].flush()
    path = path_for(settings(tmp_path, "on"), call.session_id)
    await until(path.is_file, 15)  # finished on its own thread after the hang-up

    status, kind, body = await get(url, f"/history/sessions/{call.session_id}/recording")
    assert status == 200 and kind.startswith("audio/ogg")
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.channels) == ("opus", 2)
        audio = np.concatenate([frame.to_ndarray() for frame in container.decode(stream)], axis=1)
    seconds = audio.shape[1] / 48_000
    assert lasted - 1.5 < seconds < lasted + 1.5, (seconds, lasted)
    person, bot = np.abs(audio).max(axis=1)
    assert person > 0.05 and bot > 0.2, (person, bot)  # the tone at -20 dBFS; the bot's at -6

    assert (await get(url, f"/history/sessions/{call.session_id}/recording", BOB))[0] == 404  # not theirs
    assert (await get(url, f"/history/sessions/{call.session_id}", method="DELETE"))[0] == 200
    assert not path.exists()
    assert (await get(url, f"/history/sessions/{call.session_id}/recording"))[0] == 404

    again = await calls(url, True)  # deleting all of one's data deletes their recordings too
    await again.end()
    path = path_for(settings(tmp_path, "on"), again.session_id)
    await until(path.is_file, 15)
    assert (await get(url, "/history", method="DELETE"))[0] == 200
    assert not path.exists()


async def test_retention_deletes_the_recordings_finished_before_its_cutoff(tmp_path: Path):
    old, new = tmp_path / "old.ogg", tmp_path / "new.ogg"
    for path in (old, new):
        path.write_bytes(b"OggS")
    long_ago = time.time() - 40 * 86400
    os.utime(old, (long_ago, long_ago))
    submitted: list[str] = []
    ready = asyncio.Event()
    ready.set()

    class Writer:  # the database's part of retention is tested with the store (tests/test_history_store.py)
        def submit(self, op: str, **_fields: Any) -> None:
            submitted.append(op)

    writer: Any = Writer()
    task = asyncio.get_running_loop().create_task(retain(writer, 30, ready, every_s=0.05, recordings=tmp_path))
    try:
        await until(lambda: not old.exists(), 5)
    finally:
        task.cancel()
    assert new.exists() and submitted[0] == "delete_older_than"


async def test_without_consent_or_with_the_servers_recording_off_nothing_is_recorded(
    start_server, started_apps, calls, tmp_path: Path
):
    url = await start_server(fake_providers(), settings(tmp_path / "on", "on"))
    unasked = await calls(url, None)
    declined = await calls(url, False)
    off_url = await start_server(fake_providers(), settings(tmp_path / "off", "off"))
    async with aiohttp.ClientSession() as http, http.get(off_url + "/languages") as resp:
        assert (await resp.json())["recording"] is False
    ignored = await calls(off_url, True)  # asked of a server that does not offer it: the call goes on unrecorded
    for call in (unasked, declined, ignored):
        await call.end()
    for app in started_apps:
        await app[WRITER].flush()
    assert not await asyncio.to_thread(lambda: [*tmp_path.rglob("*.ogg"), *tmp_path.rglob("*.part")])
    assert (await get(url, f"/history/sessions/{unasked.session_id}/recording"))[0] == 404
    assert (await get(url, f"/history/sessions/{unasked.session_id}"))[0] == 200  # recorded in words all the same


async def test_an_offer_whose_record_is_not_true_or_false_is_refused_in_words(start_server, tmp_path: Path):
    url = await start_server(fake_providers(), settings(tmp_path, "on"))
    body = {"sdp": await client_offer(), "type": "offer", "record": "yes"}
    async with aiohttp.ClientSession() as http, http.post(url + "/offer", json=body) as resp:
        assert resp.status == 400 and "record" in (await resp.json())["error"]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)")
async def test_the_page_offers_the_box_unticked_and_the_history_page_plays_the_recording(
    start_server, started_apps, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    t = np.arange(RATE * 2) / RATE
    write_wav(mic, (0.1 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16))
    url = await start_server(fake_providers(llm=FakeLLM("Sure.")), settings(tmp_path / "data", "on"))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"])  # fmt: skip
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(url + "/")
            box = page.locator("#record")
            await expect(box).to_be_visible()
            await expect(box).not_to_be_checked()
            await box.check()
            await start_call(page, "chat", "en")
            await page.wait_for_timeout(1500)
            await page.click("#call")
            await page.wait_for_function("() => document.getElementById('state').textContent === 'Not in a call'")
            await started_apps[-1][WRITER].flush()
            recordings = tmp_path / "data" / "recordings"
            await until(lambda: any(recordings.glob("*.ogg")), 15)

            await page.goto(url + "/static/history.html")
            await page.wait_for_selector("body[data-loaded]", state="attached", timeout=10_000)
            await page.locator("#sessions li.session button").first.click()
            player = page.locator("#past-recording")
            await expect(player).to_be_visible()
            await page.wait_for_function("() => document.getElementById('past-recording').duration > 1")
            await context.close()
        finally:
            await browser.close()
