"""Call tokens spent on any worker of a host: an SQLite file the workers share (``PARLEY_SPENT_TOKENS_DB``; the
cluster command points every worker at one in its run directory). Each worker also keeps its own set
(server/tokens.py), checked first and synchronously; this store then refuses a token another worker has already
spent, so a token is good for one call on the whole host, not one per worker.

The writes are tiny but still disk I/O, so they run on a thread of their own, never on the event loop. Across
hosts, the 60 s expiry bounds a replay (or point this at a shared file system's path only where SQLite's locking
works on it)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0  # another worker's write holds the lock for well under a millisecond


class SpentTokens:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spent-tokens")
        self._db: sqlite3.Connection | None = None  # opened on the thread, once, and used only there

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS spent (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)")
            self._db = db
        return self._db

    def _spend(self, jti: str, expires_at: int) -> bool:
        db = self._connection()
        db.execute("DELETE FROM spent WHERE expires_at < ?", (int(time.time()),))
        try:
            db.execute("INSERT INTO spent (jti, expires_at) VALUES (?, ?)", (jti, expires_at))
        except sqlite3.IntegrityError:
            return False
        return True

    async def spend(self, jti: str, expires_at: int) -> bool:
        """True if no worker had spent ``jti`` yet (it is spent now), False if one had."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._spend, jti, expires_at)

    def close(self) -> None:
        if self._db is not None:
            self._thread.submit(self._db.close)
        self._thread.shutdown(wait=False)
