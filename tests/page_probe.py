"""The call page's tests in Chromium (test_browser.py, test_call_page.py, test_cluster.py): Debian's browser with
a fake microphone, and what they read from inside the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

CHROMIUM = Path("/usr/lib/chromium/chromium")
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
    # In a namespace with only loopback: let WebRTC use 127.0.0.1 and show it (not an mDNS name).
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
]  # fmt: skip

# Runs in the page before app.js: records every data-channel event, every change of the state label, and
# the level of the remote stream (the <audio id="remote"> element's srcObject), each with performance.now().
PROBE = """
window.__probe = { events: [], states: [], levels: [] };
window.addEventListener("parley-event", (e) => __probe.events.push({ t: performance.now(), ...e.detail }));
document.addEventListener("DOMContentLoaded", () => {
  const label = document.getElementById("state"), remote = document.getElementById("remote");
  new MutationObserver(() => __probe.states.push({ t: performance.now(), text: label.textContent }))
    .observe(label, { childList: true, characterData: true, subtree: true });
  let analyser = null;
  const data = new Float32Array(1024);
  setInterval(() => {
    if (!analyser && remote.srcObject) {
      const ctx = new AudioContext();
      analyser = ctx.createAnalyser();
      analyser.fftSize = data.length;
      ctx.createMediaStreamSource(remote.srcObject).connect(analyser);
    }
    if (!analyser) return;
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    __probe.levels.push({ t: performance.now(), rms: Math.sqrt(sum / data.length) });
  }, 20);
});
"""


async def open_page(playwright: Any, tmp_path: Path, mic: str, url: str) -> tuple[Any, Any]:
    """Chromium with ``mic`` as its microphone (a WAV path, with Chromium's options), on the call page, probed."""
    # A persistent context is how Playwright takes a --user-data-dir: a fresh one in tmp_path.
    browser = await playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, headless=True,
        args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"],
    )  # fmt: skip
    page = browser.pages[0] if browser.pages else await browser.new_page()
    await page.add_init_script(PROBE)
    await page.goto(url + "/")
    return browser, page


async def framing_site(frames: dict[str, str]) -> TestServer:
    """A site of its own origin whose page frames ``frames["src"]`` (read when the page is asked for, so the
    caller may learn the site's origin first) with the microphone allowed to it."""

    async def home(_: web.Request) -> web.Response:
        src = frames["src"]
        html = f'<!doctype html><title>Portal</title><iframe src="{src}" allow="microphone; autoplay"></iframe>'
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server
