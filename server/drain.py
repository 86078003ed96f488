"""The drain: on SIGTERM (or Ctrl-C) the node keeps answering HTTP for a while, refusing new calls with a 503 and
failing /healthz so a balancer routes away, while every call is told (``ended``, ``shutdown``) and hung up; then it
stops listening and exits (server/serving.py runs the server around it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from server.protocol import EndReason

logger = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0  # at most this long for the calls to close after they were told


class Endable(Protocol):
    def end(self, reason: EndReason) -> None: ...


class Drain:
    """Whether this node is draining; /offer, /healthz and /status read it."""

    def __init__(self) -> None:
        self.active = False
        self._hurry = asyncio.Event()  # a second signal: stop lingering

    def begin(self) -> None:
        """From now on new calls are refused."""
        self.active = True

    def hurry(self) -> None:
        """Stop lingering: a second signal."""
        self._hurry.set()

    async def linger(self, seconds: float) -> None:
        """Waits ``seconds``, or less when hurried."""
        if seconds > 0 and not self._hurry.is_set():
            try:
                await asyncio.wait_for(self._hurry.wait(), seconds)
            except TimeoutError:
                pass


DRAIN = web.AppKey("drain", Drain)


async def drain(state: Drain, calls: Mapping[str, Endable], linger_s: float) -> None:
    """Ends every call in ``calls`` (the app's live table: those still being answered included) and lingers
    ``linger_s`` from the signal."""
    state.begin()
    started = time.monotonic()
    told: set[str] = set()
    logger.info("draining: new calls get 503; ending %d calls", len(calls))
    while time.monotonic() - started < CLOSE_WAIT_S:
        for session_id, call in list(calls.items()):
            if session_id not in told:  # an offer answered during the drain is ended too
                told.add(session_id)
                call.end("shutdown")
        if not calls and time.monotonic() - started >= 0.2:  # answers in flight have had time to land
            break
        await asyncio.sleep(0.05)
    await state.linger(linger_s - (time.monotonic() - started))
    logger.info("drained after %.1f s; stopping", time.monotonic() - started)
