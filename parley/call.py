"""``parley.connect``: one call to a Parley server, with typed events, the microphone as audio you hand it, the
bot's audio as a numpy array, and the call taken up again on a new connection when the network drops it.

Built on ``parley.rtc.CallClient`` (the WebRTC peer); the call page (client/static) behaves the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import numpy as np
from aiortc import RTCIceServer
from aiortc.exceptions import InvalidStateError

from parley.audio import RATE, Recording, as_pcm16, read_wav, resample, write_wav
from parley.events import Controls, Ended, ErrorEvent, Event, Lost, Ready, Scorecard, State, Transcript, parse
from parley.reconnect import keep_line
from parley.rtc import CallClient, fetch_ice_servers
from server.protocol import ClientWireMessage, ModeMessage

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

MAX_TEXT = 2000  # docs/protocol.md: a text message's limit


class CallEnded(RuntimeError):
    """The call ended (``event``: its ``Ended`` or ``Lost``) while something was still awaited of it."""

    def __init__(self, event: Event | None) -> None:
        super().__init__(f"the call has ended ({event.raw if event else 'closed'})")
        self.event = event


class ServerError(RuntimeError):
    """The server refused a message of this client's (``event``: its ``error`` event; ``code``: e.g.
    ``bad_message``, ``not_allowed``); the call goes on."""

    def __init__(self, event: ErrorEvent) -> None:
        super().__init__(f"{event.code}: {event.message}")
        self.event, self.code = event, event.code


REFUSALS = ("bad_message", "too_large", "not_allowed")  # the error codes that answer a message (not a turn's)


class Call:
    """A call to a Parley server. Use ``async with parley.connect(...) as call:`` (or ``call = await
    parley.connect(...)`` and ``await call.close()``); see ``parley.connect`` for the arguments."""

    def __init__(
        self,
        url: str,
        *,
        mode: str | None = None,
        language: str | None = None,
        token: str | None = None,
        ice_servers: Sequence[RTCIceServer | Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        loopback: bool | None = None,
        reconnect: bool = True,
        on_event: Callable[[Event], None] | None = None,
        timeout: float = 20.0,
        local_addr: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._mode, self._language = mode, language  # as asked; the call's own come in ``Ready``
        self._token, self._headers = token, dict(headers or {})
        self._ice_servers = ice_servers
        self._loopback = os.environ.get("PARLEY_ICE_LOOPBACK") == "1" if loopback is None else loopback
        self._reconnect = reconnect
        self._on_event = on_event
        self._timeout = timeout
        self._local_addr = local_addr
        self._rtc: CallClient | None = None
        self._typed: list[Event] = []  # rtc.events, typed (same order, same length)
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = False
        self._over: Event | None = None  # the call's Ended or Lost, once it came

    # -- opening and closing ---------------------------------------------------------------------------------
    async def open(self) -> Call:
        """Places the call: the server's ICE servers (``GET /ice``), then the offer; returns once ``ready`` came.
        Raises ``Refused`` (with the HTTP status and the server's words) if the server will not take it."""
        if self._rtc is not None:
            if self._rtc.closed:
                raise RuntimeError("this call is over: parley.connect() places a new one")
            return self
        if self._loopback:
            from server.ice import use_loopback_only

            use_loopback_only()
        if self._ice_servers is None:  # what the page does: the server's list, with a TURN credential of its own
            servers = await fetch_ice_servers(self.url, self._token, self._headers)
        else:
            servers = [s if isinstance(s, RTCIceServer) else RTCIceServer(**s) for s in self._ice_servers]
        rtc = CallClient(self.url, self._mode, self._language, self._token, servers, self._headers, self._local_addr)
        rtc.on_event = self._received
        self._rtc = rtc
        try:
            await rtc.connect(self._timeout)
        except BaseException:
            await rtc.close()
            raise
        if self._reconnect:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __await__(self) -> Generator[Any, None, Call]:
        return self.open().__await__()

    async def __aenter__(self) -> Call:
        return await self.open()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.end()

    async def end(self, timeout: float = 5.0) -> Scorecard | None:
        """Hangs up: the server sends what it owes (an interview's scorecard), then ``ended``; waits for that up to
        ``timeout`` seconds, then closes the connection. Returns the scorecard sent before ``ended``, if any."""
        if self._rtc is None:
            return None
        if not self.ended and self.rtc.channel_open:
            self._closing = True
            await self.rtc.end(timeout)
        await self.close()
        ended = next((i for i, e in enumerate(self._typed) if isinstance(e, (Ended, Lost))), len(self._typed))
        cards = [e for e in self._typed[:ended] if isinstance(e, Scorecard)]
        return cards[-1] if cards else None

    async def close(self) -> None:
        """Drops the connection at once (no ``end`` sent: the server keeps the call for its reconnect grace)."""
        self._closing = True
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._rtc is not None and not self._rtc.closed:
            await self._rtc.close()

    # -- what the call is --------------------------------------------------------------------------------------
    @property
    def rtc(self) -> CallClient:
        """The WebRTC peer underneath (events as dicts, the microphone track, the recording)."""
        if self._rtc is None:
            raise RuntimeError("the call is not placed yet: use 'async with parley.connect(...)' or 'await'")
        return self._rtc

    @property
    def placed(self) -> bool:
        """``open`` has been called (the call may have failed to connect since)."""
        return self._rtc is not None

    @property
    def session_id(self) -> str | None:
        return self.rtc.session_id

    @property
    def mode(self) -> str | None:
        """The call's mode, as the server last said (``Ready``); before that, the one asked for."""
        ready = next((e for e in reversed(self._typed) if isinstance(e, Ready)), None)
        return ready.mode if ready else self._mode

    @property
    def language(self) -> str | None:
        ready = next((e for e in reversed(self._typed) if isinstance(e, Ready)), None)
        return ready.language if ready else self._language

    @property
    def history(self) -> list[Event]:
        """Every event so far, in order of arrival."""
        return list(self._typed)

    @property
    def ended(self) -> bool:
        """The server ended the call, or its connection was lost for good."""
        return self._over is not None

    @property
    def recording(self) -> Recording:
        """The bot's audio as received, frame by frame, with arrival times and levels."""
        return self.rtc.recording

    @property
    def audio(self) -> np.ndarray:
        """Everything the bot said so far: int16 mono at 48 kHz (``parley.RATE``)."""
        return self.rtc.recording.audio()

    def save_wav(self, path: str | Path) -> None:
        """Writes ``audio`` as a 16-bit 48 kHz mono WAV."""
        write_wav(path, self.audio)

    # -- events ------------------------------------------------------------------------------------------------
    def _received(self, raw: dict[str, Any]) -> None:
        event = parse(raw, time.monotonic())
        self._typed.append(event)
        if isinstance(event, (Ended, Lost)) and self._over is None:
            self._over = event
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # the app's bug must not stop the events reaching their readers
                logger.exception("on_event failed on %r", event)

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the call from its start (``ready`` first), as it arrives; ends after ``Ended`` or
        ``Lost``, or when the call is closed. Each iterator has its own place: several may read at once."""
        index = 0
        while await self.rtc.event_at(index) is not None:
            event = self._typed[index]
            index += 1
            yield event
            if isinstance(event, (Ended, Lost)):
                return

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _start(self, since: Event | float | None) -> int:
        """The index of the first event after ``since`` (an event; a ``time.monotonic()`` time; None: now)."""
        if isinstance(since, Event):
            return next((i + 1 for i, e in enumerate(self._typed) if e is since), 0)
        at = time.monotonic() if since is None else since
        return next((i for i, e in enumerate(self._typed) if e.at >= at), len(self._typed))

    async def wait_for(
        self, kind: type[E], *, timeout: float = 30.0, since: Event | float | None = None, **fields: Any
    ) -> E:
        """The first event of ``kind`` whose ``fields`` have the given values, among those that arrive after
        ``since`` (an event, a ``time.monotonic()`` time, or by default from now on). Raises ``TimeoutError``
        after ``timeout`` seconds, and ``CallEnded`` if the call ends first."""

        def match(event: Event) -> bool:
            return isinstance(event, kind) and all(getattr(event, k, None) == v for k, v in fields.items())

        return cast(E, await self._first(self._start(since), match, timeout))

    async def _first(self, index: int, match: Callable[[Event], bool], timeout: float) -> Event:
        """The first event from ``index`` on that matches; ``CallEnded`` when the call ends first."""
        async with asyncio.timeout(timeout):
            while index < len(self._typed) or self._over is None:  # (nothing comes after the end)
                if await self.rtc.event_at(index) is None:
                    break
                event = self._typed[index]
                index += 1
                if match(event):
                    return event
                if isinstance(event, (Ended, Lost)):
                    raise CallEnded(event)
        raise CallEnded(self._over)

    async def _request(self, message: ClientWireMessage, kind: type[E], timeout: float) -> E:
        """Sends ``message`` and returns the ``kind`` of event that answers it; ``ServerError`` when the server
        refuses the message instead (an ``error`` event saying why)."""
        index = len(self._typed)
        self.send(message)
        event = await self._first(
            index, lambda e: isinstance(e, kind) or (isinstance(e, ErrorEvent) and e.code in REFUSALS), timeout
        )
        if isinstance(event, ErrorEvent):
            raise ServerError(event)
        return cast(E, event)

    async def greeting(self, timeout: float = 60.0) -> list[Transcript]:
        """Waits until the bot has said its opening (a greeting; an interview's first question) and listens;
        returns what it said."""
        speaking = await self.wait_for(State, state="speaking", since=0.0, timeout=timeout)
        listening = await self.wait_for(State, state="listening", since=speaking, timeout=timeout)
        said = self._typed[self._typed.index(speaking) : self._typed.index(listening)]
        return [e for e in said if isinstance(e, Transcript) and e.role == "assistant"]

    # -- what the person does ----------------------------------------------------------------------------------
    def send(self, message: ClientWireMessage) -> None:
        """Sends one message of docs/protocol.md ("Client to server") as it is."""
        try:
            self.rtc.send(message)
        except InvalidStateError as exc:  # the events channel is closed
            if self.ended or self.rtc.closed:
                raise CallEnded(None) from exc
            raise ConnectionError("the call's connection is down (reconnecting); try again shortly") from exc

    def send_text(self, text: str) -> None:
        """Typed input, answered like speech (it interrupts the bot if it is speaking)."""
        if not text.strip() or len(text) > MAX_TEXT:
            raise ValueError(f"text must be 1 to {MAX_TEXT} characters, not only spaces")
        self.send({"type": "text", "text": text})

    async def ask(self, text: str, timeout: float = 30.0) -> Transcript:
        """Sends ``text`` and returns the bot's reply to it (its transcript, once said)."""
        mark = time.monotonic()
        self.send_text(text)
        heard = await self.wait_for(Transcript, role="user", text=text, since=mark, timeout=timeout)
        return await self.wait_for(Transcript, role="assistant", since=heard, timeout=timeout)

    async def play(self, pcm: np.ndarray, rate: int = RATE, *, wait: bool = True) -> float:
        """Plays ``pcm`` (int16 samples, or floats in -1..1; mono, or (samples, channels)) at ``rate`` Hz as the
        microphone, in real time, in place of whatever was playing; with ``wait``, returns once its last sample
        has been sent. Returns when it started (``time.monotonic()``): a ``since`` for the turn it makes."""
        mic = self.rtc.mic
        mic.play(resample(as_pcm16(pcm), rate))
        started = time.monotonic()
        if wait:
            await mic.finished.wait()
        return started

    async def play_wav(self, path: str | Path, *, wait: bool = True) -> float:
        """Plays a 16-bit PCM WAV file (any rate, mono or stereo) as the microphone; see ``play``."""
        pcm = await asyncio.to_thread(read_wav, path)
        return await self.play(pcm, wait=wait)

    async def _control(self, message: ClientWireMessage, timeout: float) -> Controls:
        return await self._request(message, Controls, timeout)

    async def mute(self, muted: bool = True, timeout: float = 5.0) -> Controls:
        """Mutes (or unmutes) the microphone: silence is sent, and the server hears nothing from the person."""
        self.rtc.mic.muted = muted
        return await self._control({"type": "mute", "muted": muted}, timeout)

    async def hold(self, held: bool = True, timeout: float = 5.0) -> Controls:
        """Says "give me a moment": the bot is quiet and no silence ends the person's turn until released."""
        return await self._control({"type": "hold", "held": held}, timeout)

    async def push_to_talk(self, enabled: bool = True, timeout: float = 5.0) -> Controls:
        """Push-to-talk on or off; while on, the person is heard only between ``talk(True)`` and ``talk(False)``."""
        return await self._control({"type": "push_to_talk", "enabled": enabled}, timeout)

    async def talk(self, pressed: bool, timeout: float = 5.0) -> Controls:
        return await self._control({"type": "talk", "pressed": pressed}, timeout)

    async def set_mode(self, mode: str, language: str | None = None, timeout: float = 10.0) -> Ready:
        """Switches mode (and language): the call starts over with a new greeting. ``ServerError`` if refused."""
        message: ModeMessage = {"type": "mode", "mode": mode}
        if language:
            message["language"] = language
        return await self._request(message, Ready, timeout)

    async def scorecard(self, timeout: float = 10.0) -> Scorecard:
        """An interview's scorecard so far (``ServerError`` outside an interview)."""
        return await self._request({"type": "scorecard"}, Scorecard, timeout)

    async def reconnect(self) -> None:
        """The same call on a new connection now (``POST /resume``), as after a network change."""
        await self.rtc.reconnect(self._timeout)

    async def _watch(self) -> None:
        reason = await keep_line(self.rtc, lambda: self._closing or self.ended)
        if reason is not None:
            self.rtc.add_event({"type": "lost", "reason": reason})
            await self.close()


def connect(
    url: str = "http://127.0.0.1:8080",
    *,
    mode: str | None = None,
    language: str | None = None,
    token: str | None = None,
    ice_servers: Sequence[RTCIceServer | Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    loopback: bool | None = None,
    reconnect: bool = True,
    on_event: Callable[[Event], None] | None = None,
    timeout: float = 20.0,
    local_addr: str | None = None,
) -> Call:
    """A call to the Parley server at ``url``, placed by ``async with`` (hung up at the end of the block) or
    ``await``.

    ``mode``: ``interview`` | ``language`` | ``chat`` and ``language`` (``en``, ``fr``, ...): left out, the server's
    (or the call token's) defaults. ``token``: the server's ``PARLEY_TOKEN`` or a call token from ``POST /tokens``.
    ``ice_servers``: STUN/TURN servers (``RTCIceServer`` or dicts in the browser's shape); left out, the server's
    own list (``GET /ice``). ``headers``: more headers for the requests (e.g. ``Origin``). ``loopback``: offer
    only 127.0.0.1 as this side's address (calls on one machine; left out: ``PARLEY_ICE_LOOPBACK=1``; it applies
    to the whole process). ``reconnect``: take the call up again when its connection drops, as the call page does.
    ``on_event``: called with each event as it arrives. ``timeout``: seconds for the call to be placed.
    ``local_addr``: the address the requests leave from."""
    return Call(
        url, mode=mode, language=language, token=token, ice_servers=ice_servers, headers=headers,
        loopback=loopback, reconnect=reconnect, on_event=on_event, timeout=timeout, local_addr=local_addr,
    )  # fmt: skip
