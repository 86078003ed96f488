"""The call page framed by another site and served under a path prefix, in Debian's Chromium: a page of another
origin frames ``/parley/`` of a HAProxy that strips the prefix before the server; the page inside the frame loads
its scripts, asks for ICE servers and places its call by relative URLs, and is greeted. Without the site in
``PARLEY_FRAME_ORIGINS`` the browser refuses to show the page in the frame."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import numpy as np
import pytest

from parley.audio import write_wav
from server.config import Settings
from tests.fakes import fake_providers
from tests.page_probe import CHROMIUM, framing_site, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install chromium to run it)"),
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing (make test installs it)"),
]

PREFIX = "/parley"
# A proxy that serves Parley under /parley/: the prefix is taken off before the request reaches the server.
HAPROXY = """global
    log stdout format raw local0 info
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend public
    bind 127.0.0.1:{port}
    http-request redirect location {prefix}/ code 301 if {{ path {prefix} }}
    http-request replace-path ^{prefix}(/.*) \\1 if {{ path_beg {prefix}/ }}
    default_backend parley
backend parley
    server s1 {upstream}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    """Starts HAProxy in front of a server URL; gives the public URL with the prefix."""
    processes: list[asyncio.subprocess.Process] = []

    async def start(upstream_url: str) -> str:
        port = free_port()
        config = tmp_path / "haproxy.cfg"
        upstream = upstream_url.removeprefix("http://").rstrip("/")
        config.write_text(HAPROXY.format(port=port, prefix=PREFIX, upstream=upstream))
        haproxy = await asyncio.create_subprocess_exec("haproxy", "-db", "-f", str(config), stdout=DEVNULL)
        processes.append(haproxy)
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        return f"http://127.0.0.1:{port}{PREFIX}/"

    yield start
    for process in processes:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize("allowed", [True, False])
async def test_a_site_frames_the_call_page_served_under_a_prefix(
    start_server: Callable[..., Any],
    proxied: Callable[[str], Any],
    silence: Callable[[float], np.ndarray],
    tmp_path: Path,
    allowed: bool,
) -> None:
    from playwright.async_api import async_playwright, expect

    frames: dict[str, str] = {}
    site = await framing_site(frames)
    site_url = str(site.make_url("/")).rstrip("/")  # its origin: the server names it, or not
    settings = Settings(ice_loopback=True, frame_origins=site_url if allowed else "")
    frames["src"] = await proxied(await start_server(fake_providers(), settings))
    mic = tmp_path / "mic.wav"
    write_wav(mic, silence(2.0))
    try:
        async with async_playwright() as p:
            browser, page = await open_page(p, tmp_path, str(mic), site_url)
            try:
                frame = page.frame_locator("iframe")
                if not allowed:
                    await asyncio.sleep(2.0)
                    assert await frame.locator("#call").count() == 0  # refused: frame-ancestors
                    return
                await frame.locator("#call").click(timeout=15_000)
                await expect(frame.locator("#state")).to_have_text("Listening", timeout=20_000)
            finally:
                await browser.close()
    finally:
        await site.close()
