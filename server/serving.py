"""Serving with a drain (server/drain.py): aiohttp's own ``run_app`` closes the listener first on a signal, so a
client would get "connection refused" instead of an answer it can act on, and every call would be cut; here the
node keeps answering (503 to new calls) while its calls end, then stops listening and exits."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from server import slow_clients
from server.app import CALLS, MODELS, SETTINGS, SLOTS
from server.drain import DRAIN, drain
from server.heap import freeze_when_loaded

logger = logging.getLogger(__name__)

HTTP_SHUTDOWN_S = 2.0  # aiohttp's wait for requests in flight once the listener is closed
# Request bodies are read as sent: an offer is small JSON, and aiohttp's decompression of a body that does not
# decode fails inside the HTTP parser, where it closes the connection without an answer (found by fuzzing).
# After an answer given before a body was read whole (413, 408 to a client that trickles it), aiohttp reads and
# drops what still comes for ``lingering_time`` (10 s by default) so that the client sees the answer: 2 s is
# plenty for that, and holds a slow client's connection 8 s less.
# A kept-alive connection is closed when it has been idle, or has sent only part of its next request's headers,
# for ``keepalive_timeout`` after an answer: aiohttp's default is an hour; the header deadline of
# server/slow_clients.py covers a connection's first request only.
HANDLER_ARGS: dict[str, Any] = {"auto_decompress": False, "lingering_time": 2.0, "keepalive_timeout": 15.0}


async def serve(app: web.Application, host: str, port: int, drain_s: float) -> None:
    """Runs ``app`` until SIGTERM or SIGINT, then drains (up to ``drain_s``) and stops. A second signal ends the
    calls left at once."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_S, **HANDLER_ARGS)
    await runner.setup()
    listener = await slow_clients.listen(runner, host, port, app[SETTINGS].http_timeout_s)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    freezing = loop.create_task(freeze_when_loaded(app[MODELS].loaded))
    slots = app[SLOTS]

    def on_signal(signum: int) -> None:
        if stop.is_set():
            logger.info("%s received again: ending the calls now", signal.Signals(signum).name)
            app[DRAIN].hurry()
            return
        logger.info("%s received", signal.Signals(signum).name)
        app[DRAIN].begin()  # at once: an offer that arrives before drain() runs is refused too
        stop.set()
        if signum == signal.SIGINT and slots.busy:  # someone at a terminal: say why it does not stop yet
            print(
                f"Parley: waiting up to {drain_s:.0f} s for {slots.busy} calls to end; press Ctrl-C again to end "
                "them now",
                flush=True,
            )

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await stop.wait()
        await drain(app[DRAIN], app[CALLS], lambda: slots.busy, drain_s)
    finally:
        freezing.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        listener.close()  # stops listening
        await runner.cleanup()  # closes what is left (on_shutdown), runs the cleanup contexts
