"""The history page (client/static/history.html) in Debian's Chromium: after an interview (over aiortc, with the
page's profile id) and a chat placed from the call page (in French, with the name given on the history page), the
page lists both, opens a transcript and a scorecard, draws the chart, exports, and deletes (after asking); another
browser profile sees none of it. It fits a phone, in light and dark, and works from the keyboard."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parley.audio import write_wav
from server.config import Settings
from server.history.api import WRITER
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import is_
from tests.interview_script import answer, question_at_end
from tests.page_probe import CHROMIUM, FLAGS
from tests.test_call_page import CONTRAST, TARGETS, start_call
from tests.test_history import ProfileCall, api_json

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)"),
]

ANN = "ann-profile-0123456789abcdef"
BOB = "bob-profile-0123456789abcdef"
CHAT_REPLY = "Très bien, parlons."
# The chat's first reply, cut off by the next line typed: about 5 s of the fake voice.
LONG_REPLY = (
    "Je vais vous expliquer cela lentement et avec soin. Un processus possède sa mémoire et ses ressources. "
    "Un fil d'exécution tourne dans un processus et partage cette mémoire avec les autres fils. C'est pourquoi "
    "les fils sont moins chers à lancer mais demandent des verrous. Est-ce que cela vous semble clair ?"
)
TEXTS = ["h1", "h2", "h3", ".tagline", "label", "button", ".session time", ".session .what", "#past-transcript li",
         "#past-score-questions li", "#status", ".legend li"]  # fmt: skip


async def interview(url: str) -> str:
    """An interview over aiortc with Ann's profile: one answer partly right, one wrong, then hung up."""
    call = ProfileCall(url, ANN, mode="interview")
    try:
        await call.connect()
        await call.wait_listening(30)
        _, greeting = call.find(is_("transcript", role="assistant")) or (0, {})
        question = question_at_end(greeting["text"])
        assert question is not None, greeting
        for kind in ("partial", "wrong"):
            said, _ = answer(question, kind)
            sent = time.monotonic()
            call.send({"type": "text", "text": said})
            _, reply = await call.wait_for(is_("transcript", role="assistant", interrupted=False), 20, sent)
            question = question_at_end(reply["text"])
            assert question is not None, reply
        await call.end()
        return str(call.session_id)
    finally:
        await call.close()


async def on_page(browser: Any, profile: str, url: str) -> tuple[Any, Any]:
    """A fresh browser profile (its own storage) holding ``profile`` as the page's profile id."""
    context = await browser.new_context()
    await context.add_init_script(f"if (!localStorage.getItem('parley-profile')) "
                                  f"localStorage.setItem('parley-profile', {json.dumps(profile)});")  # fmt: skip
    page = await context.new_page()
    return context, page


async def open_history(page: Any, url: str) -> None:
    await page.goto(url + "/static/history.html")
    await page.wait_for_selector("body[data-loaded]", state="attached", timeout=10_000)


async def downloaded(page: Any, button: str) -> str:
    async with page.expect_download() as info:
        await page.click(button)
    download = await info.value
    return await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")


async def test_the_history_page_lists_opens_charts_exports_and_deletes_only_its_profiles_sessions(
    start_server: Callable[..., Any],
    started_apps: list[Any],
    silence: Callable[[float], np.ndarray],
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    settings = Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(tmp_path))
    url = await start_server(fake_providers(llm=FakeLLM(LONG_REPLY, CHAT_REPLY)), settings)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"])  # fmt: skip
        try:
            ann, page = await on_page(browser, ANN, url)
            refused: list[str] = []  # whatever the page's content security policy blocked
            page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
            # A name given on the history page goes with the next call placed from the call page.
            await open_history(page, url)
            await page.fill("#display-name", "Ann")
            await page.click("text=Save name")
            await expect(page.locator("#status")).to_contain_text("Ann")
            await page.goto(url + "/")
            await start_call(page, "chat", "fr")
            await page.fill("#text", "Bonjour")
            await page.press("#text", "Enter")
            await page.wait_for_function("() => document.getElementById('state').textContent === 'Speaking'")
            await page.wait_for_timeout(1000)
            await page.fill("#text", "Attendez, autre chose")  # cuts the long reply off
            await page.press("#text", "Enter")
            await expect(page.locator("#transcript li.assistant:not(.live)", has_text=CHAT_REPLY)).to_have_count(1)
            await page.click("#call")
            await page.wait_for_function("() => document.getElementById('state').textContent === 'Not in a call'")
            interview_id = await interview(url)
            await started_apps[-1][WRITER].flush()
            status, listed = await api_json(url, "GET", "/history/sessions", ANN)
            assert status == 200 and [s["mode"] for s in listed["sessions"]] == ["interview", "chat"]
            assert (await api_json(url, "GET", "/history/profile", ANN))[1]["display_name"] == "Ann"
            _, recorded = await api_json(url, "GET", f"/history/sessions/{interview_id}", ANN)
            answered = [q for q in recorded["questions"] if q["verdict"] != "unanswered"]
            assert [q["verdict"] for q in answered] == ["partly", "wrong"]

            # The list: both, newest first, in words.
            await open_history(page, url)
            items = page.locator("#sessions li.session")
            await expect(items).to_have_count(2)
            await expect(items.nth(0)).to_contain_text("Mock interview in English")
            await expect(items.nth(0)).to_contain_text("ended: hung up")
            await expect(items.nth(1)).to_contain_text("Free chat in Français")

            # The chart: a square per judged answer, coloured by verdict, in its topic's row; a bar per language.
            squares = await page.eval_on_selector_all(
                "#verdict-chart rect.verdict", "rs => rs.map(r => [r.classList[1], r.textContent])"
            )
            by_topic = sorted(answered, key=lambda q: q["topic"])
            assert [verdict for verdict, _ in squares] == [q["verdict"] for q in by_topic]
            assert all(q["topic"].replace("_", " ") in title for (_, title), q in zip(squares, by_topic, strict=True))
            await expect(page.locator("#language-chart rect.minutes")).to_have_count(2)
            await expect(page.locator("#language-chart svg")).to_contain_text("1 session")
            chart_words = await page.get_attribute("#verdict-chart svg", "aria-label")
            assert "partly right" in chart_words and "not right" in chart_words  # the chart in words

            # Opening the interview (from the keyboard): its transcript and its scorecard; Escape goes back.
            await items.nth(0).locator("button").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#detail")).to_be_focused()
            await expect(page.locator("#past-transcript li")).to_have_count(len(recorded["turns"]))
            await expect(page.locator("#past-transcript li.user").first).to_contain_text(recorded["turns"][1]["text"])
            await expect(page.locator("#past-scorecard")).to_be_visible()
            await expect(page.locator("#past-score-questions > li")).to_have_count(len(recorded["questions"]))
            await expect(page.locator("#past-score-questions")).to_contain_text("Partly right")
            await expect(page.locator("#past-score-summary")).to_contain_text("1 partly right, 1 not right")

            # Exports: the session's Markdown, and everything as JSON.
            markdown = await downloaded(page, "#export-md")
            assert markdown.startswith("## Interview practice in en") and "**You:**" in markdown
            assert "**partly**" in markdown
            everything = json.loads(await downloaded(page, "#export-all-json"))
            assert {s["id"] for s in everything["sessions"]} == {s["id"] for s in listed["sessions"]}

            assert not refused, refused
            # Phones and desktops, light and dark: nothing wider than the screen, readable, big enough to tap.
            for scheme in ("light", "dark"):
                await page.emulate_media(color_scheme=scheme)
                for size in ({"width": 360, "height": 740}, {"width": 1280, "height": 800}):
                    await page.set_viewport_size(size)
                    width = await page.evaluate("document.documentElement.scrollWidth")
                    assert width <= size["width"], (scheme, size, width)
                    low = [c for c in await page.evaluate(CONTRAST, TEXTS) if c["ratio"] < 4.5]
                    assert not low, (scheme, low)
                    small = [t for t in await page.evaluate(TARGETS) if t["w"] < 44 or t["h"] < 44]
                    assert not small, (scheme, size, small)
            await page.keyboard.press("Escape")
            await expect(page.locator("#detail")).to_be_hidden()
            await expect(items.nth(0).locator("button")).to_be_focused()

            # Another browser profile sees none of it.
            bob, other = await on_page(browser, BOB, url)
            await open_history(other, url)
            await expect(other.locator("#sessions li.session")).to_have_count(0)
            await expect(other.locator("#sessions")).to_contain_text("No sessions yet")
            await expect(other.locator("#progress")).to_be_hidden()
            await bob.close()

            # Deleting asks first: declined, nothing goes; accepted, the session goes; then everything.
            # The chat: both sides, the reply cut off marked so.
            await items.nth(1).locator("button").click()
            cut = page.locator("#past-transcript li.interrupted")
            await expect(cut).to_have_count(1)
            await expect(cut).to_have_class("assistant interrupted")
            await expect(page.locator("#past-transcript li.user")).to_have_count(2)
            await expect(page.locator("#past-scorecard")).to_be_hidden()
            page.once("dialog", lambda dialog: dialog.dismiss())
            await page.click("#delete-one")
            await expect(items).to_have_count(2)
            page.once("dialog", lambda dialog: dialog.accept())
            await page.click("#delete-one")
            await expect(items).to_have_count(1)
            await expect(items.nth(0)).to_contain_text("Mock interview")
            await expect(page.locator("#language-chart rect.minutes")).to_have_count(1)
            page.once("dialog", lambda dialog: dialog.accept())
            await page.click("#delete-all")
            await expect(page.locator("#status")).to_contain_text("Deleted 1 session")
            await expect(items).to_have_count(0)
            assert await api_json(url, "GET", "/history/sessions", ANN) == (200, {"sessions": []})
            await ann.close()
        finally:
            await browser.close()


async def test_where_calls_need_the_servers_token_the_history_page_uses_the_one_the_call_page_was_given(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    settings = Settings(ice_loopback=True, turn_model="off", data_dir=str(tmp_path), token="history-page-token")
    url = await start_server(fake_providers(), settings)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            _, page = await on_page(browser, ANN, url)
            await open_history(page, url)  # no token: refused, in words
            await expect(page.locator("#status")).to_contain_text("a bearer is required")
            await page.goto(url + "/#token=history-page-token")
            await page.click("text=Your practice history")
            await page.wait_for_selector("body[data-loaded]", state="attached", timeout=10_000)
            assert page.url.endswith("/static/history.html#token=history-page-token")
            await expect(page.locator("#status")).to_have_text("")
            await expect(page.locator("#sessions")).to_contain_text("No sessions yet")
        finally:
            await browser.close()
