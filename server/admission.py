"""Who may open a call: a bearer token, and a per-address rate limit on /offer. (How long a call may last is the
call's own business: ``Call._watch_limits`` in server/session.py.)"""

from __future__ import annotations

import hmac
import time
from collections import deque

from aiohttp import web

WINDOW_S = 60.0


class OfferRateLimiter:
    """At most ``per_minute`` offers from one address in any 60 s (a sliding window of timestamps)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        times = self._seen.setdefault(address, deque())
        while times and now - times[0] > WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        if len(self._seen) > 10_000:  # forget quiet addresses so the table stays small
            self._seen = {a: t for a, t in self._seen.items() if t and now - t[-1] <= WINDOW_S}
        return True


def token_ok(request: web.Request, token: str) -> bool:
    """True when no token is configured, or the request carries ``Authorization: Bearer <token>``."""
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())
