"""How many data-channel messages one call may send: a token bucket per call, so one call cannot take the event
loop (and, through the replies it starts, the shared models) from the others.

A person types a message every few seconds and a page sends a control message now and then; a burst allows a few
in quick succession (a mode change, then a text). Anything beyond is dropped before it is parsed, and the client is
told, at most once a second (answering each dropped message would hand the flood back at the same rate).
"""

from __future__ import annotations

import time

ERROR_EVERY_S = 1.0


class MessageRate:
    """A token bucket: ``per_second`` messages a second on average, at most ``burst`` at once.

    A dozen lines, so written here: the rate-limit libraries on PyPI either wait for capacity (aiolimiter) or keep
    their counters in a storage with a timer thread (limits), and one call needs neither."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None
        self._told_at: float | None = None  # when the client was last told it is over the limit
        self.dropped = 0

    def allow(self, now: float | None = None) -> bool:
        """True when a message arriving now may be handled; False counts it as dropped."""
        now = time.monotonic() if now is None else now
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.dropped += 1
        return False

    def should_tell(self, now: float | None = None) -> bool:
        """Whether a dropped message is answered with an ``error`` (the first in each second is)."""
        now = time.monotonic() if now is None else now
        if self._told_at is not None and now - self._told_at < ERROR_EVERY_S:
            return False
        self._told_at = now
        return True
