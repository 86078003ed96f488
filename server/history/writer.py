"""The history's writer: one per process, a bounded queue and one background task. A call hands it writes and
never waits: a slow database backs the queue up, a full queue drops the newest write, a failing one is logged and
counted (``parley_history_failures_total``), and the call goes on either way. Each write is its own transaction as
the event happens, so a crash loses at most what is still queued: normally the turn in flight."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.history.store import Store

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # writes waiting: at ~10 per turn, minutes of a few calls' turns while the database is away
WRITE_TIMEOUT_S = 10.0  # one write that takes longer (a stalled server) counts as failed, and the next one goes
MAX_RETRY_S = 60.0  # the longest wait between two tries at preparing the database
LOG_EVERY_S = 10.0  # at most one log line per this long about failures or drops (a dead database logs a trickle)


@dataclass(frozen=True)
class Write:
    op: str  # the Store method
    args: dict[str, Any]


class Counters:
    """What the writer reports to /metrics (server/metrics.py gives it Prometheus counters)."""

    def __init__(
        self, failed: Callable[[str], None] = lambda _op: None, dropped: Callable[[], None] = lambda: None
    ) -> None:
        self.failed = failed
        self.dropped = dropped


class Writer:
    def __init__(
        self,
        store: Store,
        counters: Counters | None = None,
        size: int = QUEUE_SIZE,
        timeout_s: float = WRITE_TIMEOUT_S,
        ready: Callable[[], Awaitable[None]] | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self.store = store
        self.counters = counters or Counters()
        self.timeout_s = timeout_s
        self._queue: asyncio.Queue[Write] = asyncio.Queue(size)
        self._ready = ready  # awaited before the first write: the migrations
        self._retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self._last_log = 0.0
        self.failures = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="history-writer")

    def submit(self, op: str, **args: Any) -> None:
        """Queues a write (never blocks, never raises)."""
        try:
            self._queue.put_nowait(Write(op, args))
        except asyncio.QueueFull:
            self.dropped += 1
            self.counters.dropped()
            self._warn("history: the write queue is full (%d); %s dropped", self._queue.maxsize, op)

    async def _run(self) -> None:
        if self._ready is not None:
            await self._prepare()
        while True:
            # (A method of its own, so that nothing here holds the last write, and its words, until the next one.)
            await self._write(await self._queue.get())

    async def _write(self, write: Write) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await getattr(self.store, write.op)(**write.args)
        except Exception as exc:  # a database that is down, locked, full or slow: the call never notices
            self.failures += 1
            self.counters.failed(write.op)
            self._warn("history: %s failed (%s: %s)", write.op, type(exc).__name__, str(exc)[:200])
        finally:
            self._queue.task_done()

    async def _prepare(self) -> None:
        """The migrations, tried until they succeed: a database that is away at start-up (a PostgreSQL server still
        starting, a data folder not yet mounted) is waited for, while the queue keeps what it can of the calls."""
        assert self._ready is not None
        delay = self._retry_s
        while True:
            try:
                return await self._ready()
            except Exception as exc:
                self.failures += 1
                self.counters.failed("migrate")
                self._warn("history: the database could not be prepared (%s: %s); trying again in %.0f s",
                           type(exc).__name__, str(exc)[:200], delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            logger.warning(message, *args)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Waits until what was queued is written (or failed); False after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Shutdown: what is queued gets ``timeout_s`` to be written, then the task stops and the engine goes."""
        if self._task is not None:
            if not await self.flush(timeout_s):
                logger.warning("history: %d writes were not written at shutdown", self.pending)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.store.close()
