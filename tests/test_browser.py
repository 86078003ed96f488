"""The call page in a real browser: Debian's Chromium, driven by Playwright, talks to the app over WebRTC.

Chromium's fake microphone plays a WAV file; the model stages are scripted fakes (the VAD is the real Silero
model). The test checks what a person would notice: the bot heard them, answered out loud, and the page said
so (state label, transcript), and that hanging up ends the call on the server too.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from bench.serverproc import ServerProcess
from parley.audio import RATE, write_wav
from server.app import CALLS
from server.config import Settings
from server.languages import LANGUAGES
from tests.fake_openai import KEY, FakeOpenAI
from tests.fakes import FakeLLM, FakeSTT, FakeTTS, fake_providers
from tests.page_probe import CHROMIUM, open_page

SAID = "What is the difference between a process and a thread?"
HEARD = "what is a thread"
REPLY = "A thread shares memory with its process. Want another question?"
# Leading silence: the file starts playing at getUserMedia, before the call is connected and greeted; the
# speech must start after the chat greeting (about 1 s of tone, over ~1.6 s after the click here, ~3 s on a
# machine loaded to the hilt) or it would count as a barge-in. 1.5 s would overlap it.
LEAD_S = 3.5
LOUD = 0.05  # RMS (full scale 1.0) above which the page counts remote audio as sound; FakeTTS is ~0.35
# Sound plays out after the state event that announces it: the receiver's jitter buffer holds tens of ms, but
# on a loaded machine (two cores, the suite and other work running) it trailed by up to ~1 s.
TAIL_MS = 1000


def at(item: dict[str, Any]) -> float:
    return float(item["t"])


def first(items: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool], after: float = 0.0) -> dict:
    found = next((i for i in items if i["t"] >= after and test(i)), None)
    assert found is not None, f"nothing matched after {after:.0f} ms in {items}"
    return found


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)")
async def test_a_person_talks_to_the_bot_in_chromium(
    start_server: Callable[..., Any],
    started_apps: list[web.Application],
    tts_speech: Callable[[str], np.ndarray],
    silence: Callable[[float], np.ndarray],
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    speech = tts_speech(SAID)
    mic = tmp_path / "mic.wav"
    write_wav(mic, np.concatenate([silence(LEAD_S), speech, silence(2.0)]))
    stt = FakeSTT(HEARD)
    url = await start_server(fake_providers(stt, FakeLLM(REPLY), FakeTTS()))
    app = started_apps[-1]

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, f"{mic}%noloop", url)
        try:
            await page.select_option("#mode", "chat")  # the shortest greeting
            await expect(page.locator("#captions")).not_to_be_checked()  # captions are off until asked for
            await expect(page.locator("#text")).to_be_disabled()  # nothing to type to before a call
            clicked = await page.evaluate("performance.now()")
            await page.click("#call")
            # The turn is over when the reply's transcript has come (sent once all of it was played); then
            # listen on a while, to check that the bot is quiet while the label says "Listening".
            await page.wait_for_function(
                """([reply, quiet]) => {
                  const state = __probe.states.at(-1), level = __probe.levels.at(-1);
                  return __probe.events.some((e) => e.type === "transcript" && e.text === reply)
                    && state.text === "Listening" && level && level.t > state.t + quiet;
                }""",
                arg=[REPLY, TAIL_MS + 500],
                timeout=25_000,
            )
            await page.screenshot(path=str(tmp_path / "mid-call.png"))
            probe: dict[str, list[dict[str, Any]]] = await page.evaluate("__probe")
            (tmp_path / "probe.json").write_text(json.dumps(probe))  # kept for a look after a failure
            transcript = page.locator("#transcript li")
            await expect(page.locator("#transcript")).to_be_hidden()
            await page.check("#captions")
            await expect(transcript).to_have_text([re.compile(r"^Bot: \S"), f"You: {HEARD}", f"Bot: {REPLY}"])
            await expect(transcript.last).to_be_visible()
            assert len(app[CALLS]) == 1
            call = next(iter(app[CALLS].values()))

            # Hanging up closes the page's peer connection; the server sees it close and forgets the call.
            await page.get_by_role("button", name="End call").click()
            await expect(page.locator("#state")).to_have_text("Not in a call")
            await asyncio.wait_for(call.closed.wait(), 10)
            assert app[CALLS] == {}
        finally:
            await browser.close()

    events, states, levels = probe["events"], probe["states"], probe["levels"]
    # On failure, the page's timeline (ms after the click) says what happened when.
    timeline = "\n".join(
        f"{x['t'] - clicked:7.0f} {x if 'type' in x else x['text']}" for x in sorted(events + states, key=at)
    )

    def loud(after: float, before: float) -> list[float]:
        return [lv["t"] for lv in levels if after < lv["t"] < before and lv["rms"] > LOUD]

    # (a) The server heard the speech: the VAD fired, the user's line came back, and STT got about the
    # sentence's length of audio (the server adds 0.3 s of pre-roll and 0.2 s of trailing silence).
    start = first(events, lambda e: e["type"] == "speech" and e["event"] == "start")
    said = first(events, lambda e: e["type"] == "transcript" and e["role"] == "user", start["t"])
    assert said["text"] == HEARD
    assert len(stt.calls) == 1 and abs(stt.calls[0][0] - speech.size / RATE) < 0.8, stt.calls
    assert not [e for e in events if e["type"] == "interrupted"], f"speech overlapped the greeting:\n{timeline}"

    # (c) The label followed the call: greeting spoken, listening, thinking about the turn, speaking the
    # reply, listening again.
    labels = [s["text"] for s in states]
    expected = ["Connecting…", "Speaking", "Listening", "Thinking…", "Speaking", "Listening"]
    assert labels[: len(expected)] == expected, timeline
    greeting, greeted, thinking, speaking, listening = (s["t"] for s in states[1:6])
    assert greeted < start["t"] < thinking <= said["t"] < speaking, timeline  # the label and line may share a ms

    # (b) Sound came while the label said "Speaking" and not while it said "Listening": the greeting, then
    # the reply (about 1.1 s of tone) after the user's line.
    assert loud(greeting - 100, greeted + TAIL_MS), f"no greeting audio; loudest {max(lv['rms'] for lv in levels)}"
    stray = loud(greeted + TAIL_MS, speaking)
    assert not stray, f"sound while listening at {[round(t - clicked) for t in stray]}:\n{timeline}"
    reply = loud(said["t"], listening + TAIL_MS)
    # 1.1 s of tone was sent; a starved receiver may drop some of it, but a reply is more than a click.
    assert reply and speaking - 200 < reply[0] and reply[-1] - reply[0] >= 200, (reply, timeline)
    stray = loud(listening + TAIL_MS, float("inf"))
    assert not stray, f"sound after the reply at {[round(t - clicked) for t in stray]}:\n{timeline}"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)")
async def test_a_person_types_and_reads_live_captions_in_chromium(
    start_server: Callable[..., Any], silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))  # a quiet room: this person types
    typed = "Bonjour ! Qu'est-ce que tu fais ce soir ?"
    reply = "Je vais au cinéma. Et toi, tu fais quoi ?"
    llm = FakeLLM(reply)
    url = await start_server(fake_providers(FakeSTT(), llm, FakeTTS(seconds_per_word=0.25)))

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            await page.select_option("#mode", "chat")
            await page.check("#captions")
            await page.click("#call")
            await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)  # greeted

            await page.fill("#text", typed)
            await page.press("#text", "Enter")
            await expect(page.locator("#text")).to_have_value("")
            lines = page.locator("#transcript li")
            # While the bot speaks, its caption shows the sentence it is saying, before the turn is over.
            await expect(lines.last).to_have_text("Bot: Je vais au cinéma.", timeout=20_000)
            await expect(page.locator("#state")).to_have_text("Speaking")
            await expect(lines).to_have_text([re.compile(r"^Bot: \S"), f"You: {typed}", f"Bot: {reply}"])
            events: list[dict[str, Any]] = await page.evaluate("__probe.events")

            await page.get_by_role("button", name="End call").click()
            await expect(page.locator("#text")).to_be_disabled()
        finally:
            await browser.close()

    # The typed line reached the model as the person's turn; the reply was captioned sentence by sentence.
    assert llm.requests[-1][-1]["content"].startswith(typed)  # (with a note to reply in French: see drift_guard)
    captions = [e["text"] for e in events if e["type"] == "caption"]
    assert captions[-2:] == ["Je vais au cinéma.", "Et toi, tu fais quoi ?"], captions


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)")
async def test_the_language_picker_lists_the_servers_languages_in_chromium(
    start_server: Callable[..., Any], silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(1.0))  # nobody speaks: the greeting is the check
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("Muy bien.")))

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            # The page has English alone until GET /languages answers; then every language, in its own name.
            options = page.locator("#language option")
            await expect(options).to_have_count(len(LANGUAGES))
            listed = await options.evaluate_all("(os) => os.map((o) => [o.value, o.textContent, o.dir, o.title])")
            assert listed == [[code, lang.native, lang.direction, lang.name] for code, lang in LANGUAGES.items()]
            await expect(page.locator("#language")).to_have_value("en")

            # A language chosen there is the call's: the practice greeting comes in Spanish.
            await page.select_option("#mode", "language")
            await page.select_option("#language", "es")
            await page.check("#captions")
            await page.click("#call")
            await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)
            greeting = f"Bot: {LANGUAGES['es'].practice_greeting}"
            await expect(page.locator("#transcript li").first).to_have_text(greeting)
            events: list[dict[str, Any]] = await page.evaluate("__probe.events")
            assert first(events, lambda e: e["type"] == "ready")["language"] == "es"
            await page.get_by_role("button", name="End call").click()
            await expect(page.locator("#state")).to_have_text("Not in a call")
        finally:
            await browser.close()


async def test_the_interview_scorecard_shows_on_the_page_when_the_call_ends(
    start_server: Callable[..., Any],
    started_apps: list[web.Application],
    silence: Callable[[float], np.ndarray],
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    from tests.interview_script import answer, question_at_end

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(1.0))  # the answer is typed: the microphone stays quiet
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("You have the first point, but not the rest.")))
    app = started_apps[-1]

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            await expect(page.locator("#mode")).to_have_value("interview")
            await page.click("#call")
            greeting = page.locator("#transcript li").first
            # The greeting ends with the first question (behavioural ones are requests: "Describe a time...");
            # its line is complete once the bot listens (live captions grow sentence by sentence before).
            await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)
            await expect(greeting).to_have_text(re.compile(r"^Bot: .*[?.]$"))
            question = question_at_end((await greeting.text_content() or "").removeprefix("Bot: "))
            assert question is not None
            said, _ = answer(question, "partial")
            # The page's own data channel carries the typed answer, as a typed-input box would send it.
            await page.wait_for_function("() => channel && channel.readyState === 'open'")
            await page.evaluate("(text) => channel.send(JSON.stringify({ type: 'text', text }))", said)
            await expect(page.locator("#transcript li")).to_have_count(3, timeout=20_000)
            await expect(page.locator("#transcript li").nth(2)).to_have_text(re.compile(r"^Bot: (That's )?[Pp]artly"))
            call = next(iter(app[CALLS].values()))

            await page.get_by_role("button", name="End call").click()
            card = page.locator("#scorecard")
            await expect(card).to_be_visible()
            await expect(page.locator("#score-summary")).to_have_text(re.compile(r"^2 questions asked, 1 answered"))
            first = page.locator("#score-questions > li").first
            title = re.compile(re.escape(question.text) + ".*Partly right$")
            await expect(first.locator(".question")).to_have_text(title)
            await expect(first.locator("li.covered")).to_have_text([f"Covered: {question.key_points[0].point}"])
            missed = [f"Missed: {kp.point}" for kp in question.key_points[1:]]
            await expect(first.locator("li.missed")).to_have_text(missed)
            await expect(page.locator("#score-study li").first).to_be_visible()
            await page.screenshot(path=str(tmp_path / "scorecard.png"), full_page=True)
            # The call is over on both sides.
            await expect(page.locator("#state")).to_have_text("Not in a call")
            await asyncio.wait_for(call.closed.wait(), 10)
            probe = await page.evaluate("__probe")
            kinds = [e["type"] for e in probe["events"]]
            assert kinds.index("scorecard") < kinds.index("ended")
        finally:
            await browser.close()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)")
async def test_the_page_calls_a_server_that_wants_a_token_in_chromium(
    start_server: Callable[..., Any],
    started_apps: list[web.Application],
    silence: Callable[[float], np.ndarray],
    tmp_path: Path,
) -> None:
    """The static token from the URL's fragment, or typed when the page asks, then a call token an app minted:
    /ice (the page gets its TURN credential) and /offer both get it, and the call connects."""
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(1.0))
    settings = Settings(ice_loopback=True, hangover_ms=500, max_calls=5, token="s3cret", signing_keys="k" * 32,
                        turn_secret="t", turn_urls="turn:127.0.0.1:3478")  # fmt: skip
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("Sure.")), settings)
    app = started_apps[-1]
    async with aiohttp.ClientSession() as http:
        body = {"mode": "chat", "user": "u-7"}
        async with http.post(f"{url}/tokens", json=body, headers={"Authorization": "Bearer s3cret"}) as resp:
            call_token = (await resp.json())["token"]

    async def call_from(page: Any, fragment: str) -> str | None:
        """Places a call from the page at ``fragment``; the user the server keeps with it."""
        await page.goto("about:blank")  # a new fragment alone would not load the page again
        await page.goto(f"{url}/{fragment}")
        await page.select_option("#mode", "chat")
        await page.click("#call")
        await expect(page.locator("#state")).to_have_text(re.compile("Listening|Not in a call"), timeout=20_000)
        await expect(page.locator("#error")).to_be_hidden()  # (an error, e.g. a refused token, shows there)
        await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)
        servers = await page.evaluate("pc.getConfiguration().iceServers")  # what the page got from /ice
        assert [s["urls"] for s in servers] == [["turn:127.0.0.1:3478"]] and servers[0]["username"], servers
        (call,) = app[CALLS].values()
        await page.get_by_role("button", name="End call").click()
        await expect(page.locator("#state")).to_have_text("Not in a call")
        await asyncio.wait_for(call.closed.wait(), 10)
        return call.user

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            assert await call_from(page, "#token=s3cret") is None
            asked: list[str] = []

            async def answer(dialog: Any) -> None:
                asked.append(dialog.message)
                await dialog.accept("s3cret")

            typing = await browser.new_page()
            typing.on("dialog", answer)
            assert await call_from(typing, "") is None
            assert asked == ["This server needs an access token:"]  # once: /ice asked, /offer had it
            assert await call_from(await browser.new_page(), f"#token={call_token}") == "u-7"
        finally:
            await browser.close()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)")
async def test_the_page_says_a_crashed_call_was_lost_and_calls_again_in_chromium(
    silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    """A server process killed mid-call (SIGKILL: no "ended" is sent): the page says the call was lost and offers
    to call again; with a server back on the same address, the button places a call in the same mode and
    language, which connects and is greeted."""
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    fake = await FakeOpenAI().start()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_DRAIN_S": "0"}  # fmt: skip
    first = ServerProcess(env)
    second = ServerProcess(env)
    second.port, second.url = first.port, first.url  # the supervisor's restart, on the same address
    try:
        first.start()
        await first.wait_healthy(120)
        async with async_playwright() as p:
            browser, page = await open_page(p, tmp_path, str(mic), first.url)
            try:
                await expect(page.locator("#language option[value=fr]")).to_have_count(1, timeout=10_000)
                await page.select_option("#mode", "language")
                await page.select_option("#language", "fr")
                await page.click("#call")
                await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)  # greeted
                await expect(page.locator("#again")).to_be_hidden()
                first.signal(signal.SIGKILL)
                killed = await page.evaluate("performance.now()")
                # (after trying for a few seconds to take the call up again: test_page_reconnect.py)
                await expect(page.locator("#error")).to_have_text("The call was lost.", timeout=25_000)
                await expect(page.get_by_role("button", name="Call again")).to_be_visible()
                await expect(page.locator("#state")).to_have_text("Not in a call")
                noticed = await page.evaluate("performance.now()")
                print(f"the page said the call was lost {(noticed - killed) / 1000:.1f} s after the kill")

                second.start()
                await second.wait_healthy(120)
                await page.select_option("#mode", "chat")  # what was on screen is put back for the call again
                await page.get_by_role("button", name="Call again").click()
                await expect(page.locator("#again")).to_be_hidden()
                await expect(page.locator("#error")).to_be_hidden()
                await page.wait_for_function(
                    "(t) => __probe.events.some((e) => e.t > t && e.type === 'state' && e.state === 'listening')",
                    arg=noticed, timeout=20_000,
                )  # fmt: skip
                await expect(page.locator("#state")).to_have_text("Listening")
                assert await page.locator("#mode").input_value() == "language"
            finally:
                await browser.close()
    finally:
        first.stop()
        second.stop()
        await fake.close()
    assert " language/fr from " in second.log_path.read_text(), second.log_tail()
