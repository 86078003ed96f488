"""Helpers shared by test files (test files never import each other): paths, event matchers, calls, offers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from parley.rtc import CallClient

ROOT = Path(__file__).resolve().parent.parent
SHARED_AUDIO = Path(os.environ.get("PARLEY_SHARED_AUDIO", ROOT.parent / "shared" / "audio"))


def shared_clip(relative: str) -> Path:
    """A clip from the recorded-speech folder ($PARLEY_SHARED_AUDIO), or a skip that says why."""
    path = SHARED_AUDIO / relative
    if not path.is_file():
        pytest.skip(
            f"{path} is absent (recorded speech is not in the repository: set PARLEY_SHARED_AUDIO, "
            "see 'Recorded speech' in bench/README.md)"
        )
    return path


async def settled(condition: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.01) -> bool:
    """Waits for ``condition`` (instead of sleeping a fixed time and hoping); False if it never held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(step_s)
    return True


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Waits for ``condition``; fails after ``timeout_s``."""
    assert await settled(condition, timeout_s), f"not within {timeout_s} s"


def is_(kind: str, **fields: object):
    """Matches an event of ``kind`` whose ``fields`` have the given values."""
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


async def chat_call(start_server, call_client, providers, echo_gain: float = 0.0) -> tuple[CallClient, float]:
    """A chat-mode call to a server with ``providers`` (hang-over 500 ms), once its greeting is over. With
    ``echo_gain``, the client's microphone picks up what it plays, as loudspeakers would."""
    url = await start_server(providers)
    call = await call_client(url, mode="chat")
    call.mic.echo_gain = echo_gain
    return call, await call.wait_listening()


async def client_offer(video_only: bool = False, send_audio: bool = True, channel: bool = False) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if video_only:
        pc.addTransceiver("video")
    else:
        pc.addTransceiver("audio", direction="sendrecv" if send_audio else "recvonly")
    if channel:
        pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp
