"""The call page takes a call up again after its connection drops, in Debian's Chromium: mid-interview the page's
connection is closed under it; the page says "Reconnecting…", comes back on a new connection to the same call
(same session, same next question), and the scorecard at hang-up holds the answers from both sides of the drop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parley.audio import write_wav
from tests.fakes import FakeLLM, fake_providers
from tests.interview_script import answer, question_at_end
from tests.page_probe import CHROMIUM, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)"),
]

FEEDBACK = "You covered every point clearly."
LAST_ASSISTANT = "() => [...__probe.events].reverse().find((e) => e.type === 'transcript' && e.role === 'assistant')"


async def typed_answer(page: Any, text: str) -> str:
    """Types ``text`` and returns the bot's whole reply to it."""
    count = await page.evaluate("__probe.events.filter((e) => e.type === 'transcript').length")
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await page.wait_for_function(
        "(n) => __probe.events.filter((e) => e.type === 'transcript').slice(n)"
        ".some((e) => e.role === 'assistant' && !e.interrupted)", arg=count, timeout=20_000,
    )  # fmt: skip
    return (await page.evaluate(LAST_ASSISTANT))["text"]


async def test_the_page_takes_an_interview_up_again_after_its_connection_drops(
    start_server: Callable[..., Any], silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    url = await start_server(fake_providers(llm=FakeLLM(FEEDBACK, FEEDBACK)))

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            await page.select_option("#mode", "interview")
            await page.click("#call")
            await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)
            first = question_at_end((await page.evaluate(LAST_ASSISTANT))["text"])
            assert first is not None
            second = question_at_end(await typed_answer(page, answer(first, "correct")[0]))
            assert second is not None and second != first
            session = await page.evaluate("window.parleySessionId")

            await page.evaluate("pc.close()")  # the line drops under the page
            await expect(page.locator("#state")).to_have_text("Reconnecting…", timeout=10_000)
            await expect(page.locator("#state")).to_have_text("Listening", timeout=20_000)
            readies = await page.evaluate("__probe.events.filter((e) => e.type === 'ready').map((e) => e.session_id)")
            assert readies == [session, session]  # the same call, greeted once
            await expect(page.locator("#error")).to_be_hidden()

            third = question_at_end(await typed_answer(page, answer(second, "correct")[0]))
            assert third not in (None, first, second)
            await page.get_by_role("button", name="End call").click()
            await expect(page.locator("#scorecard")).to_be_visible(timeout=10_000)
            card = await page.evaluate("[...__probe.events].reverse().find((e) => e.type === 'scorecard')")
            assert [q["question"] for q in card["questions"][:2]] == [first.text, second.text]
            assert [q["verdict"] for q in card["questions"][:2]] == ["correct", "correct"]
        finally:
            await browser.close()
