"""The garbage collector, set for a server that runs for months.

Loading the embedded models leaves about 430,000 Python objects that live as long as the process (tokenizer
tables, model metadata). CPython's collector walks all of them at every full collection: 205 ms on this
machine, on the event loop, which must move audio every 20 ms. And a full collection comes only once the
objects that survived since the last one reach a quarter of that heap, so the garbage of ended calls (a call is
a web of reference cycles: aiortc's event handlers, the call's hooks) waited for dozens of calls, holding its
peer connections, Opus codecs, resampler threads and audio buffers.

``gc.freeze()`` once the models are loaded moves the start-up objects out of the collector's sight: a full
collection then walks only what calls create (0.003 ms on the frozen heap alone), and an ended call is freed
within a few calls (``python -m bench.soak``; ``parley_live_calls`` in /metrics).

Within a few calls is not at once: the ended calls still waiting (up to ~25 in a 100-call soak) held their
buffers, and what their inference threads freed stayed in glibc's arenas (server/native_memory.py). So once a
call has ended, ``AfterCalls`` hands the C heap's free pages back, off the event loop, and, when no other call
is in progress to hear the event loop pause, collects the ended calls' cycles first.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

from server import native_memory

logger = logging.getLogger(__name__)


def freeze_startup_objects() -> None:
    started = time.perf_counter()
    gc.collect()  # only what is alive is frozen
    gc.freeze()
    # A full collection runs only once the objects promoted since the last one reach a quarter of what that one
    # left, and freezing does not reset that count: without this second (now nearly free) collection, the bar
    # stayed at a quarter of the start-up heap, and ended calls waited for a collection that never came (the
    # embedded server's 50-call soak: 16 ended calls alive, no full collection in 40 calls).
    gc.collect()
    logger.info(
        "froze %d start-up objects for the garbage collector (%.0f ms)",
        gc.get_freeze_count(), (time.perf_counter() - started) * 1000,
    )  # fmt: skip


async def freeze_when_loaded(loaded: asyncio.Event) -> None:
    """Freezes the heap once the models have loaded (the server process's start-up, not the tests')."""
    await loaded.wait()
    freeze_startup_objects()


RELEASE_DELAY_S = 1.0  # an ended call's transports close in tasks of their own: let them finish first


class AfterCalls:
    """Memory upkeep after a call ends: its reference cycles collected, the C heap's free pages given back.
    Calls that end while it runs get one more pass, not one each."""

    def __init__(self, idle: Callable[[], bool]) -> None:
        self._idle = idle  # no call in progress
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def call_ended(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._release())

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._again = False
            await asyncio.sleep(RELEASE_DELAY_S)
            started = time.perf_counter()
            # A full collection holds the event loop: 25-80 ms on the embedded server's frozen heap (the objects
            # made since the freeze), ~200 ms on a heap never frozen (tests). So only with no call in progress to
            # hear the gap; under load the collector's own schedule frees ended calls a few calls later.
            found = gc.collect() if gc.get_freeze_count() and self._idle() else 0
            collected = time.perf_counter() - started
            trimmed = await loop.run_in_executor(None, native_memory.give_back)
            # The collection holds the event loop: worth a line when it is long enough to be heard.
            logger.log(
                logging.INFO if collected > 0.02 else logging.DEBUG,
                "after a call: %d objects collected in %.1f ms, C heap trimmed in %.1f ms (off the loop)",
                found, collected * 1000, trimmed * 1000,
            )  # fmt: skip
            if not self._again:
                return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
