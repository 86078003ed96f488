"""The call page as a phone call, in Debian's Chromium (Playwright, a fake microphone, scripted model stages):
the call controls and their messages (and the call kept in the browser's own profile),
the page on phones and desktops in light and dark, captions of an Arabic
call right to left, and what shows during a call (timer, the line's quality, both level meters, the tones).

What the page sent is read from ``window.parleyDebug.sent`` (every message the page put on the events channel), and
what the server answered from the page's events (tests/page_probe.py). What the server does with each control is
in test_controls.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parley.audio import write_wav
from tests.fakes import FakeLLM, FakeSTT, FakeTTS, fake_providers
from tests.page_probe import CHROMIUM, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)"),
]

# The sessions GET /history/sessions lists for a profile, once the last one has its end written (or [] after 5 s).
HISTORY = """async (profile) => {
  for (let i = 0; i < 25; i++) {
    const r = await fetch("history/sessions", { headers: { "X-Parley-Profile": profile } });
    const { sessions } = await r.json();
    if (sessions.length && sessions[0].ended_at) return sessions;
    await new Promise((done) => setTimeout(done, 200));
  }
  return [];
}"""
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}

# The contrast ratio (WCAG 2) of each visible element's text against the first opaque background behind it.
CONTRAST = """(selectors) => {
  const parse = (c) => {
    const m = c.match(/[\\d.]+/g).map(Number);
    return { rgb: m.slice(0, 3), a: m.length > 3 ? m[3] : 1 };
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ({ rgb }) => 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2]);
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return parse("rgb(255, 255, 255)");
  };
  const found = [];
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(selector)) {
      if (!el.getClientRects().length || !el.textContent.trim()) continue;
      const [hi, lo] = [lum(parse(getComputedStyle(el).color)), lum(behind(el))].sort((a, b) => b - a);
      found.push({ selector, text: el.textContent.trim().slice(0, 30), ratio: (hi + 0.05) / (lo + 0.05) });
    }
  }
  return found;
}"""
TEXTS = ["h1", ".tagline", ".pickers label", "select", "button", "#state", ".badge", ".timer", ".quality",
         ".meter-label", "#transcript li", ".toggle", "#text"]  # fmt: skip
# Every visible control's box: fingers need 44x44 px.
TARGETS = """() => Array.from(document.querySelectorAll("button, select, input[type=text], .toggle"))
  .filter((el) => el.getClientRects().length)
  .map((el) => [el.id || el.className, el.getBoundingClientRect()])
  .map(([id, r]) => ({ id, w: r.width, h: r.height }))"""


async def sent(page: Any) -> list[dict[str, Any]]:
    return await page.evaluate("parleyDebug.sent")


async def mic_enabled(page: Any) -> list[bool]:
    """Whether the microphone's track sends sound (enabled), per track."""
    return await page.evaluate("parleyDebug.micEnabled()")


async def start_call(page: Any, mode: str = "chat", language: str | None = None) -> None:
    await page.select_option("#mode", mode)
    if language:
        await page.select_option("#language", language)
    await page.click("#call")
    await page.wait_for_function("() => document.getElementById('state').textContent === 'Listening'", timeout=20_000)


async def test_the_call_controls_send_their_messages_and_silence_the_microphone(
    start_server: Callable[..., Any], silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("Sure.")))

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            mute = page.get_by_role("button", name="Mute")
            hold = page.get_by_role("button", name="Give me a moment")
            talk = page.get_by_role("button", name="Hold to talk")
            await expect(mute).to_be_disabled()  # nothing to mute before a call
            await start_call(page)
            assert await mic_enabled(page) == [True]
            done = len(await sent(page))

            # M mutes: the track stops sending, the server is told, the page shows it; M again unmutes.
            await page.keyboard.press("m")
            await expect(mute).to_have_attribute("aria-pressed", "true")
            await expect(page.locator("#muted-badge")).to_be_visible()
            assert await mic_enabled(page) == [False]
            await page.keyboard.press("M")
            await expect(mute).to_have_attribute("aria-pressed", "false")
            assert await mic_enabled(page) == [True]

            # "Give me a moment": H holds, the button releases; the state area says so meanwhile.
            await page.keyboard.press("h")
            await expect(page.locator("#held")).to_have_text("On hold")
            await expect(hold).to_have_attribute("aria-pressed", "true")
            await hold.click()
            await expect(page.locator("#held")).to_be_hidden()

            # Push-to-talk: the microphone is off until Space (held, its key repeating) or the button is down.
            await expect(talk).to_be_hidden()
            await page.check("#ptt")
            await expect(talk).to_be_visible()
            assert await mic_enabled(page) == [False]
            await page.locator("#call").focus()  # Space must talk, not press the focused End call button
            await page.keyboard.down("Space")
            await page.keyboard.down("Space")  # a repeat: no second message
            await expect(talk).to_have_attribute("aria-pressed", "true")
            assert await mic_enabled(page) == [True]
            await page.keyboard.up("Space")
            await expect(talk).to_have_attribute("aria-pressed", "false")
            assert await mic_enabled(page) == [False]
            await talk.hover()
            await page.mouse.down()
            await expect(talk).to_have_attribute("aria-pressed", "true")
            await page.mouse.up()
            await expect(talk).to_have_attribute("aria-pressed", "false")
            # Typing in the box is typing: M, H and Space there are letters, not shortcuts.
            await page.fill("#text", "")
            await page.type("#text", "hm m")
            await page.uncheck("#ptt")
            await expect(talk).to_be_hidden()
            assert await mic_enabled(page) == [True]
            assert await page.locator("#state").text_content() != "Not in a call"

            assert (await sent(page))[done:] == [
                {"type": "mute", "muted": True}, {"type": "mute", "muted": False},
                {"type": "hold", "held": True}, {"type": "hold", "held": False},
                {"type": "push_to_talk", "enabled": True},
                {"type": "talk", "pressed": True}, {"type": "talk", "pressed": False},
                {"type": "talk", "pressed": True}, {"type": "talk", "pressed": False},
                {"type": "push_to_talk", "enabled": False},
            ]  # fmt: skip

            # The server took each of them: a "controls" event for each, and no error.
            await page.wait_for_function("() => __probe.events.filter((e) => e.type === 'controls').length >= 10")
            last = await page.evaluate("__probe.events.filter((e) => e.type === 'controls').at(-1)")
            assert {k: last[k] for k in ("muted", "held", "push_to_talk", "talking")} == {
                "muted": False, "held": False, "push_to_talk": False, "talking": False}  # fmt: skip
            assert await page.evaluate("__probe.events.filter((e) => e.type === 'error')") == []

            # The server's "controls" event is the truth the page shows, whatever the buttons said before.
            await page.evaluate(
                "onEvent({ type: 'controls', muted: true, held: true, push_to_talk: false, talking: false })"
            )
            await expect(mute).to_have_attribute("aria-pressed", "true")
            await expect(page.locator("#held")).to_be_visible()
            assert await mic_enabled(page) == [False]

            await page.get_by_role("button", name="End call").click()
            await expect(page.locator("#state")).to_have_text("Not in a call")
            await expect(mute).to_have_attribute("aria-pressed", "false")  # the next call starts unmuted
            await expect(mute).to_be_disabled()

            # The call went into this browser's profile (a random id it keeps), and into no other's.
            profile = await page.evaluate("localStorage.getItem('parley-profile')")
            assert re.fullmatch(r"[A-Za-z0-9_-]{22}", profile)
            mine = await page.evaluate(HISTORY, profile)
            assert len(mine) == 1 and mine[0]["ended_at"] and mine[0]["end_reason"]
            assert await page.evaluate(HISTORY, "someone-else-entirely-0123456789") == []
        finally:
            await browser.close()


async def test_the_page_fits_phones_and_desktops_in_light_and_dark(
    start_server: Callable[..., Any], silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("Sure. What else?")))

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            await page.reload()  # now heard from the start: nothing the page does may break its CSP
            # The keyboard reaches every control, in order, with a visible focus ring.
            await page.check("#captions")
            await page.select_option("#mode", "chat")
            await page.click("#call")
            await page.wait_for_function("() => document.getElementById('state').textContent === 'Listening'")
            await page.keyboard.press("m")
            await page.keyboard.press("h")
            await page.check("#ptt")
            await page.locator("#text").fill("Hello there")
            await page.press("#text", "Enter")
            await page.locator("#transcript li").nth(2).wait_for()
            await page.evaluate("document.activeElement.blur()")
            reached = []
            for _ in range(20):
                await page.keyboard.press("Tab")
                focused = "(el) => el === document.body ? null : [el.id, getComputedStyle(el).outlineStyle]"
                at = await page.evaluate(f"({focused})(document.activeElement)")
                if at:  # (past the last control the browser's own UI has the focus)
                    reached.append(at)
            ids = {r[0] for r in reached}
            assert {"mode", "language", "mic-select", "call", "mute", "hold", "ptt", "talk", "text", "send",
                    "captions"} <= ids, reached  # fmt: skip
            assert all(style != "none" for _, style in reached), reached

            backgrounds = {}
            for scheme in ("light", "dark"):
                for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
                    await page.emulate_media(color_scheme=scheme)
                    await page.set_viewport_size(size)
                    await page.screenshot(path=str(tmp_path / f"{scheme}-{name}.png"), full_page=True)
                    contrast = await page.evaluate(CONTRAST, TEXTS)
                    assert len(contrast) > 20, contrast
                    low = [c for c in contrast if c["ratio"] < 4.5]
                    assert not low, f"{scheme} {name}: {low}"
                    if name == "phone":
                        width = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
                        assert width[0] <= width[1], f"{scheme}: the page scrolls sideways at 360 px: {width}"
                        small = [t for t in await page.evaluate(TARGETS) if t["w"] < 44 or t["h"] < 44]
                        assert not small, f"targets under 44x44 px: {small}"
                        # One column: the pickers stack.
                        lefts = await page.locator(".pickers label:visible").evaluate_all(
                            "(ls) => ls.map((l) => l.getBoundingClientRect().left)"
                        )
                        assert len(set(lefts)) == 1, lefts
                    backgrounds[scheme] = await page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert backgrounds == {"light": "rgb(246, 247, 249)", "dark": "rgb(17, 20, 24)"}, backgrounds

            # English lines read left to right.
            dirs = await page.locator("#transcript li").evaluate_all(
                "(ls) => ls.map((l) => [l.lang, getComputedStyle(l).direction])"
            )
            assert dirs and all(d == ["en", "ltr"] for d in dirs), dirs
            # Screen readers hear the state as it changes (a polite live region), not the timer's every second.
            live = "(el) => el.closest('[aria-live]') && el.closest('[aria-live]').getAttribute('aria-live')"
            assert await page.locator("#state").evaluate(live) == "polite"
            assert await page.locator("#held").evaluate(live) == "polite"
            assert await page.locator("#timer").evaluate(live) is None
            assert await page.locator("#transcript").evaluate(live) == "polite"  # and the captions
            assert not [m for m in console if "Content Security Policy" in m], console
        finally:
            await browser.close()


async def test_captions_of_an_arabic_call_are_marked_arabic_and_right_to_left(
    start_server: Callable[..., Any], silence: Callable[[float], np.ndarray], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    from server.languages import LANGUAGES

    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("ذهبت إلى السوق.")))
    typed = "أمس ذهبت إلى السوق."

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            await expect(page.locator("#language option[value=ar]")).to_have_count(1, timeout=10_000)
            await page.check("#captions")
            await start_call(page, "language", "ar")
            await page.fill("#text", typed)
            await page.press("#text", "Enter")
            lines = page.locator("#transcript li")
            await expect(lines).to_have_count(3, timeout=20_000)
            await expect(lines.first).to_have_text(f"Bot: {LANGUAGES['ar'].practice_greeting}")
            await expect(lines.nth(1)).to_have_text(f"You: {typed}")
            marks = await lines.evaluate_all("(ls) => ls.map((l) => [l.lang, l.dir, getComputedStyle(l).direction])")
            assert marks == [["ar", "rtl", "rtl"]] * 3, marks
            await page.screenshot(path=str(tmp_path / "arabic.png"))
        finally:
            await browser.close()


async def test_a_call_shows_its_timer_line_quality_levels_and_plays_its_tones(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    # The microphone: a second of silence, then a tone that comes and goes (a steady one would be taken for
    # noise by Chromium's noise suppression), so the mic meter has something to show.
    t = np.arange(48_000 * 6) / 48_000
    tone = (0.2 * 32767 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)).astype(np.int16)
    mic = tmp_path / "mic.wav"
    write_wav(mic, np.concatenate([np.zeros(48_000, dtype=np.int16), tone]))
    url = await start_server(fake_providers(FakeSTT(), FakeLLM("Sure."), FakeTTS(seconds_per_word=0.4)))

    async with async_playwright() as p:
        browser, page = await open_page(p, tmp_path, str(mic), url)
        try:
            # Chromium can send the bot's voice to a chosen speaker: the picker shows (where a browser cannot, as
            # Safari, it is hidden).
            await expect(page.locator("#speaker-select")).to_be_visible()
            bare = await browser.new_page()
            await bare.add_init_script("delete HTMLMediaElement.prototype.setSinkId")
            await bare.goto(url + "/")
            await expect(bare.locator("#mic-select")).to_be_visible()
            await expect(bare.locator("#speaker-select")).to_be_hidden()
            await bare.close()

            timer, quality = page.locator("#timer"), page.locator("#quality")
            await expect(timer).to_be_hidden()
            await page.select_option("#mode", "chat")
            await page.click("#call")
            await expect(timer).to_have_text(re.compile(r"^00:0\d$"), timeout=20_000)
            # Both meters move: the bot's during its greeting, the person's with the tone.
            await page.wait_for_function("() => parseFloat(document.getElementById('bot-level').style.width) > 5")
            await page.wait_for_function("() => parseFloat(document.getElementById('level').style.width) > 5")
            await expect(timer).to_have_text(re.compile(r"^00:0[2-9]$"), timeout=10_000)  # it counts
            # On loopback the line is good, with its figures at hand.
            figures = r"round trip \d+ ms, loss 0\.0 %, jitter \d+ ms"
            await expect(quality).to_have_text(re.compile(rf"^Line: Good \({figures}\)$"))  # the figures for readers
            await expect(quality).to_have_attribute("title", re.compile(f"^{figures}$"))  # and on hover
            shown_box = await quality.locator(".visually-hidden").bounding_box()
            assert shown_box and shown_box["width"] <= 1, shown_box  # on screen, "Line: Good" alone
            # A poor line says so, in words and in the warning colour.
            normal = await quality.evaluate("(el) => getComputedStyle(el).color")
            shown = await page.evaluate(
                """() => { Line.show({ rtt: 650, loss: 1, jitter: 10 }); const el = document.getElementById("quality");
                  return [el.textContent, getComputedStyle(el).color]; }"""
            )
            assert shown[0] == "Poor line: round trip 650 ms, loss 1.0 %, jitter 10 ms" and shown[1] != normal, shown
            grades = await page.evaluate(
                "[[100, 0, 5], [250, 0, 5], [100, 6, 5], [100, 0, 60]].map(([rtt, loss, jitter]) =>"
                " Line.grade({ rtt, loss, jitter }))"
            )
            assert grades == ["good", "fair", "poor", "poor"]

            # Another microphone mid-call: the same call sends the new device's track.
            options = await page.locator("#mic-select option").evaluate_all("(os) => os.map((o) => o.value)")
            assert len(options) >= 3, options  # the default, and Chromium's fake devices by name
            before = await page.evaluate("[pc.getSenders()[0].track.id, pc.getSenders()[0].track.label]")
            await page.select_option("#mic-select", options[-1])
            await page.wait_for_function("(id) => pc.getSenders()[0].track.id !== id", arg=before[0])
            assert await page.evaluate("pc.connectionState") == "connected"

            await page.get_by_role("button", name="End call").click()
            await expect(page.locator("#state")).to_have_text("Not in a call")
            await expect(timer).to_be_hidden()
            await expect(quality).to_be_hidden()
            assert await page.evaluate("parleyDebug.tones") == ["connected", "ended"]
        finally:
            await browser.close()
