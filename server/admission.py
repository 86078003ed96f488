"""Who may open a call: the node's call slots, a bearer token (the static ``PARLEY_TOKEN`` or a call token), a
per-address rate limit on /offer and a per-address cap on concurrent calls. (How long a call may last is the
call's own business: ``Call._watch_limits`` in server/session.py.)"""

from __future__ import annotations

import hmac
import time
from collections import deque

from aiohttp import web

from server.tokens import CallTokens, Grant, TokenError

WINDOW_S = 60.0


class CallSlots:
    """This node's call slots: ``capacity`` calls in progress or being set up. ``take`` checks and takes in one
    synchronous step, so offers that arrive together cannot all pass the check before any of them is counted
    (the check used to come before two awaits and the call after them). Whoever took a slot gives it back: the
    offer when it is refused or fails, the call when it ends."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.busy = 0

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.busy)

    def take(self) -> bool:
        if self.busy >= self.capacity:
            return False
        self.busy += 1
        return True

    def give_back(self) -> None:
        self.busy = max(0, self.busy - 1)


class OfferRateLimiter:
    """At most ``per_minute`` offers from one address in any 60 s (a sliding window of timestamps); 0: no limit
    here (a balancer in front counts offers per caller instead, e.g. HAProxy's stick table)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, address: str, now: float | None = None) -> bool:
        if self.per_minute <= 0:
            return True
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


class AddressCalls:
    """At most ``limit`` calls open at once from one address (0: no limit). A place is taken before the call is
    set up (two offers at once cannot both slip under the cap) and given back when the call ends or fails."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if self.limit and count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def give_back(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)


def bearer(request: web.Request) -> str | None:
    given = request.headers.get("Authorization", "")
    return given[7:].strip() if given.startswith("Bearer ") else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authorize(request: web.Request, static_token: str, tokens: CallTokens) -> Grant | None:
    """Who may set up a call (``/ice``, ``/offer``): anyone when neither ``PARLEY_TOKEN`` nor signing keys are
    configured, the bearer of the static token (None: any mode and language), or the bearer of a valid call
    token (its Grant, not yet spent). TokenError otherwise, saying what is wrong."""
    if not static_token and not tokens.enabled:
        return None
    given = bearer(request)
    if not given:
        raise TokenError("a valid bearer token is required (Authorization: Bearer ...)")
    if static_token and _same(given, static_token):
        return None
    if tokens.enabled and given.count(".") == 2:  # a JWT: header.claims.signature
        return tokens.verify(given)
    raise TokenError("a valid bearer token is required (Authorization: Bearer ...): this one is wrong")


def api_key_ok(request: web.Request, api_keys: str, static_token: str) -> bool:
    """``POST /tokens``: the bearer is one of ``PARLEY_API_KEYS`` (or the static token, for a single person's
    server)."""
    given = bearer(request)
    if not given:
        return False
    keys = [k.strip() for k in api_keys.split(",") if k.strip()] + ([static_token] if static_token else [])
    return any([_same(given, key) for key in keys])  # a list: every key compared, whichever matches
