"""Run blocking inference off the event loop and stream its results back into it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
_DONE = object()


async def stream_from_thread(
    executor: ThreadPoolExecutor, produce: Callable[[threading.Event], Iterator[T]]
) -> AsyncIterator[T]:
    """Iterates ``produce(stop)`` in ``executor`` and yields its items on the loop.

    When the consumer stops early (cancelled on barge-in, or closed) ``stop`` is set; the producer checks it
    between items, so the worker frees up within one item (one token, one audio chunk). A job still waiting in
    the executor's queue (the model is busy with another call) is dropped there and never starts: a superseded
    reply costs no model time it has not begun.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed while the worker ran (server shutting down)
            stop.set()

    def work() -> None:
        if stop.is_set():  # stopped between leaving the queue and starting: not one item is made
            put(_DONE)
            return
        try:
            for item in produce(stop):
                if stop.is_set():
                    break
                put(item)
        except BaseException as exc:  # handed to the consumer, which raises it on the loop
            put(exc)
        finally:
            put(_DONE)

    job = executor.submit(work)
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()  # the worker exits after its current item; work() never raises, so nothing is lost
        job.cancel()  # still queued behind other calls' work: it leaves the queue (False, harmless, once it runs)
