"""Who may open a call (bearer token, per-address rate limit on /offer) and how long a call may last."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import deque
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from server.session import Call

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


async def watch_call_limits(call: Call) -> None:
    """Ends a call that ran too long, or in which the person has said nothing for a long time."""
    settings = call.settings
    while True:
        now = time.monotonic()
        if now - call.started_at >= settings.max_call_s:
            return call.end("max_duration")
        if now - call.last_activity >= settings.idle_s:
            return call.end("idle")
        await asyncio.sleep(min(1.0, settings.idle_s / 4, settings.max_call_s / 4))
