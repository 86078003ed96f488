"""The drain, in two phases. On SIGTERM (or Ctrl-C) the node admits nothing new at once (/offer 503, /healthz 503,
the agent check says ``up drain``) and lets its calls go on until they end by themselves: a rolling restart cuts
no conversation. Once the last one has ended it exits; when ``drain_s`` has passed, or at a second signal, the
calls left are told (``ended``, ``shutdown``) and hung up. server/serving.py runs the server around it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from aiohttp import web

from server.protocol import EndReason

logger = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0  # at most this long for the calls to close after they were told
POLL_S = 0.05
PROGRESS_S = 30.0  # how often a long drain says how many calls it still waits for


class Endable(Protocol):
    def end(self, reason: EndReason) -> None: ...


class Drain:
    """Whether this node is draining; /offer, /healthz, /status and the agent check read it."""

    def __init__(self) -> None:
        self.active = False
        self._hurry = asyncio.Event()  # a second signal: stop waiting for the calls

    def begin(self) -> None:
        """From now on new calls are refused."""
        self.active = True

    def hurry(self) -> None:
        """End the calls now: a second signal."""
        self._hurry.set()

    @property
    def hurried(self) -> bool:
        return self._hurry.is_set()


DRAIN = web.AppKey("drain", Drain)


async def drain(state: Drain, calls: Mapping[str, Endable], busy: Callable[[], int], drain_s: float) -> None:
    """Waits up to ``drain_s`` (less when hurried) for the node's calls to end, then ends the rest. ``calls`` is
    the app's live table; ``busy()`` counts the call slots held, offers still being answered included (each took
    its slot before the drain began, and its call is waited for like the others)."""
    state.begin()
    started = time.monotonic()
    if busy():
        logger.info("draining: new calls get 503; waiting up to %.0f s for %d calls to end", drain_s, busy())
    reported = started
    while busy() and not state.hurried and time.monotonic() - started < drain_s:
        if time.monotonic() - reported >= PROGRESS_S:
            reported = time.monotonic()
            logger.info("draining: %d calls still in progress, %.0f s left", busy(), drain_s - (reported - started))
        await asyncio.sleep(POLL_S)
    if busy():
        await _end_the_rest(calls, busy)
    logger.info("drained after %.1f s; stopping", time.monotonic() - started)


async def _end_the_rest(calls: Mapping[str, Endable], busy: Callable[[], int]) -> None:
    """Tells every call left (``shutdown``) and waits up to CLOSE_WAIT_S for them to close; an offer answered
    meanwhile is ended too."""
    logger.info("draining: ending %d calls (shutdown)", busy())
    ending = time.monotonic()
    told: set[str] = set()
    while busy() and time.monotonic() - ending < CLOSE_WAIT_S:
        for session_id, call in list(calls.items()):
            if session_id not in told:
                told.add(session_id)
                call.end("shutdown")
        await asyncio.sleep(POLL_S)
