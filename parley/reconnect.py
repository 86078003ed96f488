"""Keeping a call's line: a connection lost under the call is replaced by a new one (``POST /resume``), as the
call page does (client/static/app.js, reconnect.js), so a network change does not end the call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from parley.rtc import CallClient, Refused

logger = logging.getLogger(__name__)

# As the page: a line is lost after 3 s disconnected or without audio (the server sends a 20 ms frame every 20 ms,
# silence included); taking the call up again is tried for 8 s, once a second.
LOST_AFTER_S = 3.0
RECONNECT_FOR_S = 8.0
RECONNECT_EVERY_S = 1.0
POLL_S = 0.25


def line_lost(rtc: CallClient, audio_since: float, disconnected_since: float | None) -> bool:
    """The connection failed, was closed under the call, stayed disconnected for ``LOST_AFTER_S``, or is up with
    no audio for that long (since ``audio_since`` at the earliest), or the events channel closed with no
    ``ended``."""
    now = time.monotonic()
    state = rtc.pc.connectionState
    if state in ("new", "connecting"):
        return False  # not up yet (after an offer): the offer's own timeout covers that
    if state == "disconnected":
        return disconnected_since is not None and now - disconnected_since >= LOST_AFTER_S
    if state != "connected" or not rtc.channel_open:
        return True
    last = rtc.recording.arrivals[-1] if rtc.recording.arrivals else 0.0
    return now - max(last, audio_since) >= LOST_AFTER_S


async def keep_line(rtc: CallClient, done: Callable[[], bool]) -> str | None:
    """Watches ``rtc``'s connection and takes the call up again whenever it is lost, until ``done()`` (None) or
    until it cannot be (why, in words). Adds a ``reconnecting`` event to ``rtc`` at each attempt."""
    audio_since = time.monotonic()  # audio is expected from here on
    disconnected_since: float | None = None
    while True:
        await asyncio.sleep(POLL_S)
        if done() or rtc.closed:
            return None
        if rtc.pc.connectionState != "disconnected":
            disconnected_since = None
        elif disconnected_since is None:
            disconnected_since = time.monotonic()
        if not line_lost(rtc, audio_since, disconnected_since):
            continue
        reason = await take_up_again(rtc, done)
        if reason is not None:
            return reason
        audio_since, disconnected_since = time.monotonic(), None


async def take_up_again(rtc: CallClient, done: Callable[[], bool]) -> str | None:
    """Offers new connections to ``POST /resume`` for ``RECONNECT_FOR_S``; None once the call is back, else why
    it is lost (a 4xx answer, the call has ended or is not this client's, ends the attempts at once)."""
    logger.info("call %s: the connection was lost; reconnecting", rtc.session_id)
    rtc.add_event({"type": "reconnecting"})
    give_up = time.monotonic() + RECONNECT_FOR_S
    while True:
        try:
            await rtc.reconnect(timeout=5.0)
            logger.info("call %s: reconnected", rtc.session_id)
            return None
        except Refused as exc:
            if 400 <= exc.status < 500:
                return str(exc)
            reason = str(exc)
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            reason = f"could not take the call up again (POST /resume): {exc or type(exc).__name__}"
        if done() or time.monotonic() > give_up:
            return reason
        await asyncio.sleep(RECONNECT_EVERY_S)
