"""HAProxy's agent check (``agent-check agent-inter 500ms``): a TCP responder that tells the balancer, on every
connection, how much room this node has, so offers go to the node with the most free call slots and never to a
full or draining one. HTTP connections (``leastconn``) are not calls: an answered offer leaves none open.

Each connection gets one ASCII line, then is closed: ``up ready <P>%`` (P: the free share of the call slots,
at least 1 while any is free, 0 when full), ``up drain`` (draining, or models still loading) or ``down`` (the
models failed to load). It reads only memory, so a change shows at HAProxy's next check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

logger = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 2.0  # a peer that does not read its line is let go of


def agent_line(loaded: bool, failed: bool, draining: bool, free: int, capacity: int) -> str:
    """The agent's answer for a node's state."""
    if failed:
        return "down\n"
    if draining or not loaded:
        return "up drain\n"
    percent = 100 * free // capacity if capacity > 0 else 0
    if free > 0:
        percent = max(1, percent)  # 0% would read as full: one free slot of 200 is still room
    return f"up ready {percent}%\n"


async def serve_agent(host: str, port: int, state: Callable[[], str]) -> asyncio.Server:
    """Listens on ``host``:``port`` and answers every connection with ``state()``."""

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(state().encode("ascii"))
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
        except (OSError, TimeoutError):
            pass  # the checker went away: it will ask again
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, reuse_address=True)
    logger.info("agent check answering on %s:%d", host, port)
    return server


def agent_context(host: str, port: int, state: Callable[[], str]) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: the responder runs as long as the app, the drain included (it says ``up drain`` then)."""

    async def run(_app: web.Application) -> AsyncIterator[None]:
        server = await serve_agent(host, port, state)
        yield
        server.close()
        await server.wait_closed()

    return run
