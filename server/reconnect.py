"""A call that outlives its connection: when the connection fails or the person's audio stops (Wi-Fi to mobile, a
laptop lid), the call keeps its conversation, its interview and its slot for ``PARLEY_RECONNECT_S`` while its
client comes back with a new offer (``POST /resume``); past that it ends as before.

aiortc has no ICE restart, so coming back is a new peer connection that takes over the call's tracks: the same
outgoing track (its clock restarted, pts going on), a new incoming one, a new ``events`` channel (it is sent
``ready`` with the same ``session_id``, then the events kept while the call was away). Only the client that
placed the call can take it over: the offer's answer gave it a secret, compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from aiortc import RTCPeerConnection

from server.audio.outbound import SpeechTrack
from server.config import Settings
from server.dialogue.turn_taking import TurnTaker
from server.protocol import EndReason

logger = logging.getLogger(__name__)


class Call(Protocol):
    """What of its call (server/session.py) a reconnection uses."""

    session_id: str
    settings: Settings
    pc: RTCPeerConnection
    track: SpeechTrack
    turn_taker: TurnTaker

    @property
    def connected_once(self) -> bool: ...

    @property
    def ending(self) -> bool: ...

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    def end(self, reason: EndReason) -> None: ...


class Reconnection:
    """One call's way back: its secret, and whether (since when) it is away."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.secret = secrets.token_urlsafe(24)
        self.away_since: float | None = None
        self._waiting: asyncio.Task[None] | None = None

    def owned_by(self, secret: object) -> bool:
        return isinstance(secret, str) and hmac.compare_digest(secret.encode(), self.secret.encode())

    def lost(self) -> None:
        """The connection failed, or the person's audio stopped: the call waits for them, or ends."""
        call = self._call
        if self.away_since is not None or call.ending:
            return
        if call.settings.reconnect_s <= 0 or not call.connected_once:
            call.end("peer_gone")
            return
        self.away_since = time.monotonic()
        call.turn_taker.barge_in()  # nobody hears the reply now: it is cut where the person last heard it
        logger.info("call %s: connection lost; waiting %.0f s for it to come back", call.session_id,
                    call.settings.reconnect_s, extra={"call": call.session_id, "event": "away"})  # fmt: skip
        self._waiting = call.spawn(self._give_up_later())

    async def _give_up_later(self) -> None:
        await asyncio.sleep(self._call.settings.reconnect_s)
        self._waiting = None
        self._call.end("peer_gone")

    def returned(self) -> None:
        """The new connection is up: the call goes on."""
        if self.away_since is None:
            return
        logger.info("call %s: reconnected after %.1f s", self._call.session_id, time.monotonic() - self.away_since,
                    extra={"call": self._call.session_id, "event": "reconnected"})  # fmt: skip
        self.away_since = None
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None

    async def take_over(self, pc: RTCPeerConnection) -> None:
        """``pc`` becomes the call's connection, to be answered with the call's track (through a
        ``ConnectionTrack`` of its own); the old one is closed first, so that no two senders read the track. The
        call is away until ``pc`` connects: a client may come back before the server noticed it had gone."""
        call = self._call
        old, call.pc = call.pc, pc
        self.lost()  # (never ends the call here: it has connected before)
        try:
            await old.close()
        except Exception:
            logger.exception("call %s: closing the replaced connection failed", call.session_id)
        old.remove_all_listeners()
        call.track.resync()
