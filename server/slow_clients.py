"""Slow clients: a connection must deliver its request's headers within a time limit, or it is closed.

aiohttp's server has no such limit: a client that opens connections and sends a header line now and then (the
"slowloris" attack) holds each one for as long as it likes. The limit sits in front of aiohttp's protocol, as a
thin wrapper that watches the bytes go by for the end of the headers (a blank line) and forwards everything
unchanged. It covers a connection's first request; aiohttp's own keep-alive timeout covers the wait for the
next ones. An offer's body has its own limit where it is read (``server/signalling.py``, ``read_offer``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

END_OF_HEADERS = b"\r\n\r\n"
BARE_END = b"\n\n"  # a parser that takes bare line feeds: a complete head all the same, never a cut-off request


class HeaderDeadline(asyncio.Protocol):
    """Wraps one connection's aiohttp protocol; closes the connection if no complete request head arrives within
    ``timeout_s`` of its opening."""

    def __init__(self, inner: Any, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for a blank line split across two reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire, transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if END_OF_HEADERS in seen or BARE_END in seen:
                self._cancel()
            else:
                self._tail = seen[-(len(END_OF_HEADERS) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._tail = b""

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        self._timer = None
        peer = transport.get_extra_info("peername")
        logger.info("closing a connection from %s: no request within %.0f s", peer, self._timeout_s)
        transport.abort()  # nothing to say: no request arrived to answer


def guarded(factory: Callable[[], Any], timeout_s: float) -> Callable[[], HeaderDeadline]:
    return lambda: HeaderDeadline(factory(), timeout_s)


async def listen(runner: web.AppRunner, host: str, port: int, timeout_s: float) -> asyncio.Server:
    """Listens on ``host:port`` for ``runner``'s app (set up already), with the header deadline. The caller
    closes the returned server (stops listening) before ``runner.cleanup()``."""
    assert runner.server is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(guarded(runner.server, timeout_s), host, port, reuse_address=True)
