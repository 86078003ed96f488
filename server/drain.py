"""Serving with a drain: on SIGTERM (or Ctrl-C) the node keeps answering HTTP for a while, refusing new calls with
a 503 and failing /healthz so a balancer routes away, while every call is told (``ended``, ``shutdown``) and hung
up; then it stops listening and exits. aiohttp's own ``run_app`` closes the listener first, so a client would get
"connection refused" instead of an answer it can act on."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web

logger = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0  # at most this long for the calls to close after they were told
HTTP_SHUTDOWN_S = 2.0  # aiohttp's wait for requests in flight once the listener is closed
# Request bodies are read as sent: an offer is small JSON, and aiohttp's decompression of a body that does not
# decode fails inside the HTTP parser, where it closes the connection without an answer (found by fuzzing).
HANDLER_ARGS = {"auto_decompress": False}


class Drain:
    """Whether this node is draining; /offer, /healthz and /status read it."""

    def __init__(self) -> None:
        self.active = False
        self.hurry = asyncio.Event()  # a second signal: stop lingering


DRAIN = web.AppKey("drain", Drain)


async def drain(app: web.Application, linger_s: float) -> None:
    """Ends every call (those still being answered included) and lingers ``linger_s`` from the signal."""
    from server.app import CALLS  # app imports this module

    state = app[DRAIN]
    state.active = True
    started = time.monotonic()
    told: set[str] = set()
    logger.info("draining: new calls get 503; ending %d calls", len(app[CALLS]))
    while time.monotonic() - started < CLOSE_WAIT_S:
        calls = app[CALLS]
        for session_id, call in list(calls.items()):
            if session_id not in told:  # an offer answered during the drain is ended too
                told.add(session_id)
                call.end("shutdown")
        if not calls and time.monotonic() - started >= 0.2:  # answers in flight have had time to land
            break
        await asyncio.sleep(0.05)
    remaining = linger_s - (time.monotonic() - started)
    if remaining > 0 and not state.hurry.is_set():
        try:
            await asyncio.wait_for(state.hurry.wait(), remaining)
        except TimeoutError:
            pass
    logger.info("drained after %.1f s; stopping", time.monotonic() - started)


async def serve(app: web.Application, host: str, port: int, linger_s: float) -> None:
    """Runs ``app`` until SIGTERM or SIGINT, then drains and stops. A second signal cuts the linger short."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_S, **HANDLER_ARGS)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            app[DRAIN].hurry.set()
        else:
            logger.info("%s received", signal.Signals(signum).name)
            app[DRAIN].active = True  # at once: an offer that arrives before drain() runs is refused too
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await stop.wait()
        await drain(app, linger_s)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()  # stops listening, closes what is left (on_shutdown), runs the cleanup contexts
