"""The JavaScript client on a page of another origin, in Debian's Chromium: the embedding example's page
(examples/embed/, served by the app's own backend on its own port) holds a ``<parley-call>`` element loaded from
the Parley server; the element gets a call token from the app's backend for each call, places it, shows the
greeting and the answer to typed text, and re-dispatches the call's events to the page. The same page, framed by a
third site, does the same. The element's ``mode`` and ``language`` attributes choose the call's persona and
language, and ``connect()`` of parley.js places a call from the page's own script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.serverproc import free_port
from examples.embed.backend import make_app
from parley.audio import write_wav
from server.app import CALLS
from server.config import Settings
from server.dialogue.modes import CHAT
from server.languages import LANGUAGES
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import until
from tests.page_probe import CHROMIUM, framing_site, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)"),
]

API_KEY = "the-app-backend-api-key"
SIGNING_KEY = "a-signing-key-of-at-least-32-bytes"
ANSWER = "Embedded and well."

# The page records what the element re-dispatched ("parley-<type>" events on the element).
LISTEN = """() => {
  window.__heard = [];
  const element = document.querySelector("parley-call");
  for (const type of ["message", "state", "ended", "failed", "connected"]) {
    element.addEventListener("parley-" + type, (e) => __heard.push({ on: type, t: performance.now(), ...e.detail }));
  }
}"""
HEARD = "(pred) => __heard.filter((e) => Object.entries(pred).every(([k, v]) => e[k] === v))"


async def heard(frame: Any, **pred: Any) -> list[dict[str, Any]]:
    return await frame.evaluate(HEARD, pred)


async def wait_heard(frame: Any, **pred: Any) -> dict[str, Any]:
    await frame.wait_for_function(f"(pred) => ({HEARD})(pred).length > 0", arg=pred, timeout=20_000)
    return (await heard(frame, **pred))[0]


@pytest.mark.parametrize("framed", [False, True])
async def test_a_page_of_another_origin_holds_calls_with_the_element(
    start_server: Callable[..., Any],
    started_apps: list[web.Application],
    silence: Callable[[float], np.ndarray],
    tmp_path: Path,
    framed: bool,
) -> None:
    from playwright.async_api import async_playwright, expect

    port = free_port()
    origin = f"http://127.0.0.1:{port}"  # the app's origin: another port is another origin
    settings = Settings(ice_loopback=True, hangover_ms=500, signing_keys=SIGNING_KEY, api_keys=API_KEY,
                        cors_origins=origin)  # fmt: skip
    parley = await start_server(fake_providers(llm=FakeLLM(ANSWER)), settings)
    backend = TestServer(make_app(parley, API_KEY), host="127.0.0.1", port=port)
    await backend.start_server()
    portal = await framing_site({"src": f"{origin}/"}) if framed else None
    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    try:
        async with async_playwright() as p:
            start_url = str(portal.make_url("/")).rstrip("/") if portal else origin
            browser, page = await open_page(p, tmp_path, str(mic), start_url)
            try:
                if framed:
                    await page.wait_for_selector("iframe")
                    frame = await (await page.query_selector("iframe")).content_frame()  # type: ignore[union-attr]
                    await frame.wait_for_load_state()
                else:
                    frame = page.main_frame
                assert frame.url == f"{origin}/"
                element = frame.locator("parley-call")
                await expect(element.get_by_role("button", name="Start call")).to_be_visible(timeout=15_000)
                await frame.evaluate(LISTEN)

                # A call in the page's mode (chat) and language: greeted, then answered when the page types.
                clicked = await frame.evaluate("performance.now()")
                await element.get_by_role("button", name="Start call").click()
                await expect(element.get_by_role("status")).to_have_text("Listening", timeout=20_000)
                connected = await wait_heard(frame, on="connected")
                print(f"{'framed' if framed else 'unframed'}: click to connected {connected['t'] - clicked:.0f} ms")
                ready = await wait_heard(frame, on="message", type="ready")
                assert (ready["mode"], ready["language"]) == ("chat", "en")
                greeting = await wait_heard(frame, on="message", type="transcript", role="assistant")
                assert greeting["text"] in CHAT.greetings
                lines = element.locator("#transcript li")
                await expect(lines.first).to_have_text(f"Bot: {greeting['text']}")
                (server_call,) = started_apps[-1][CALLS].values()
                assert server_call.user == "demo-user-42"  # the app's backend minted this call's token

                assert await frame.evaluate("document.querySelector('parley-call').sendText('can you hear me?')")
                await wait_heard(frame, on="message", type="transcript", role="assistant", text=ANSWER)
                await expect(lines.last).to_have_text(f"Bot: {ANSWER}")
                await expect(frame.locator("#log li").last).to_have_text(f"assistant: {ANSWER}")  # the app's own log
                # Typed into the element's own field, the same.
                await element.get_by_role("textbox", name="Type a message").fill("and again?")
                await element.get_by_role("textbox", name="Type a message").press("Enter")
                await expect(lines.filter(has_text="You: and again?")).to_have_count(1)

                await element.get_by_role("button", name="End call").click()
                ended = await wait_heard(frame, on="ended")
                assert ended["reason"] == "requested" and not ended.get("local"), ended  # the server's own ended
                await expect(element.get_by_role("status")).to_have_text("Not in a call")

                # Hung up at once, while connecting: back to no call, and nothing to complain about.
                await element.get_by_role("button", name="Start call").click()
                await element.get_by_role("button", name="End call").click()
                await expect(element.get_by_role("button", name="Start call")).to_be_enabled()
                await expect(element.get_by_role("status")).to_have_text("Not in a call")
                await expect(element.get_by_role("alert")).to_be_hidden()

                # The attributes choose the next call: Spanish practice, greeted in Spanish, with a new token.
                await frame.evaluate(
                    "() => { const el = document.querySelector('parley-call');"
                    " el.setAttribute('mode', 'language'); el.setAttribute('language', 'es'); __heard.length = 0; }"
                )
                await element.get_by_role("button", name="Start call").click()
                ready = await wait_heard(frame, on="message", type="ready")
                assert (ready["mode"], ready["language"]) == ("language", "es")
                await expect(lines.first).to_have_text(f"Bot: {LANGUAGES['es'].practice_greeting}", timeout=20_000)
                await expect(lines.first).to_have_attribute("lang", "es")
                # Mid-call, a new language attribute switches the call (the server starts over in French).
                await frame.evaluate("document.querySelector('parley-call').setAttribute('language', 'fr')")
                await wait_heard(frame, on="message", type="ready", language="fr")
                await expect(lines.last).to_have_text(f"Bot: {LANGUAGES['fr'].practice_greeting}", timeout=20_000)
                await element.get_by_role("button", name="End call").click()
                await expect(element.get_by_role("status")).to_have_text("Not in a call")

                # A token the server refuses: the element says why, and tells the page.
                await frame.evaluate(
                    "() => { const el = document.querySelector('parley-call'); el.removeAttribute('token-url');"
                    " el.setAttribute('token', 'forged'); __heard.length = 0; }"
                )
                await element.get_by_role("button", name="Start call").click()
                failed = await wait_heard(frame, on="failed")
                await expect(element.get_by_role("alert")).to_have_text(failed["message"])
                assert "bearer token is required" in failed["message"], failed  # the server's words (401)
                await expect(element.get_by_role("button", name="Start call")).to_be_enabled()
                await frame.evaluate(
                    "() => { const el = document.querySelector('parley-call'); el.removeAttribute('token');"
                    " el.setAttribute('token-url', '/call-token'); }"
                )

                # The module itself, from the page's script: a token from the backend, connect(), events, end().
                states, events = (await frame.evaluate(CONNECT, parley)).values()
                assert states[0] == "connecting" and "listening" in states and states[-1] == "ended", states
                types = [e["type"] for e in events]
                assert types[0] in ("ready", "connected") and "connected" in types, types
                assert {"type": "back", "same": True} in events and "reconnecting" in states, (states, events)
                said = [e["text"] for e in events if e["type"] == "transcript" and e["role"] == "assistant"]
                assert said[0] in CHAT.greetings and said[-1] == ANSWER, events
                # The server's "ended" (a message), then the call's own, once.
                assert events[-2:] == [{"type": "ended", "reason": "requested"}] + [
                    {"on": "ended", "type": "ended", "reason": "requested"}], events[-3:]  # fmt: skip

                # A call still open when its page is left hangs up (pagehide): the server frees it at once rather
                # than keeping it, and its slot, for a reconnection (30 s here).
                await frame.evaluate(LEFT_OPEN, parley)
                calls = started_apps[-1][CALLS]
                assert len(calls) == 1
                await frame.goto("about:blank")
                await until(lambda: not calls, 3)
            finally:
                await browser.close()
    finally:
        await backend.close()
        if portal:
            await portal.close()


# In the page: a call by connect(), greeted, and left open.
LEFT_OPEN = """async (parley) => {
  const { connect } = await import(parley + "/static/parley.js");
  const { token } = await (await fetch("/call-token", { method: "POST" })).json();
  const call = await connect({ url: parley, token, mode: "chat", audioElement: null });
  await new Promise((resolve) => call.on("transcript", resolve));
}"""

# In the page: a call by parley.js's connect(), with a token the app's backend minted; greeted, then a typed line
# answered; ended by end(). Gives the call's states and its other events, in order.
CONNECT = """async (parley) => {
  const { connect } = await import(parley + "/static/parley.js");
  const { token } = await (await fetch("/call-token", { method: "POST" })).json();
  const states = [], events = [];
  const call = await connect({ url: parley, token, mode: "chat", audioElement: null,
    on: { state: (e) => states.push(e.state) } });
  call.addEventListener("message", (e) => { if (e.detail.type !== "state") events.push(e.detail); });
  call.on("connected", () => events.push({ type: "connected" }));
  call.on("ended", (e) => events.push({ on: "ended", ...e }));
  // The next event of a type (that passes ``test``); an error that says what came instead after 20 s.
  const next = (type, test = () => true) => new Promise((resolve, reject) => {
    const off = call.on(type, (e) => { if (test(e)) { off(); resolve(e); } });
    setTimeout(() => reject(new Error(`no ${type}: ${JSON.stringify({ states, events })}`)), 20000);
  });
  await next("transcript"); // the greeting
  const session = call.sessionId;
  const back = Promise.all([next("reconnected"), next("open")]); // in either order
  call.pc.close(); // the line drops: the call is taken up again (POST /resume, across origins too)
  await back;
  events.push({ type: "back", same: call.sessionId === session });
  const answered = next("transcript", (e) => e.text === "Embedded and well.");
  call.sendText("hello?");
  await answered;
  await call.end();
  return { states, events };
}"""
