"""One call: the wiring of its peer connection (inbound audio, the outgoing track, the events channel) to the
turn-taker and the responder, and the call's own lifetime (limits, ending, closing).

- ``Hearing`` (server/audio/hearing.py): speech events per 32 ms window, the bot held at an onset;
- ``TurnTaker`` (server/dialogue/turn_taking.py): turns, speculation, listening ahead, barge-in, one
  ``ReplyHandle`` per reply; it reaches the call only through ``TurnHooks``, which ``Call`` implements;
- ``Responder`` (server/dialogue/responder.py): what is said, and the dialogue's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from server.audio.echo import EchoGate
from server.audio.hearing import Hearing
from server.audio.inbound import InboundAudio
from server.audio.outbound import Segment, SpeechTrack
from server.audio.turn_model import TurnModel
from server.audio.vad import SileroModel
from server.config import Settings
from server.controls import CallControls
from server.dialogue.ahead import listens_ahead
from server.dialogue.backchannel import is_backchannel
from server.dialogue.reply import ReplyHandle
from server.dialogue.responder import Responder
from server.dialogue.turn_taking import TurnTaker
from server.events import BadMessage, Command, Control, EventChannel, ModeChange, Reset, TextInput, parse_client_message
from server.message_rate import MessageRate
from server.metrics import Metrics
from server.protocol import Ended, EndReason, Error, Ready, ServerEvent
from server.providers.base import Providers
from server.reconnect import Reconnection
from server.tokens import Grant, TokenError
from server.turn_options import TurnOptions

logger = logging.getLogger(__name__)


class Call:
    def __init__(
        self,
        session_id: str,
        pc: RTCPeerConnection,
        settings: Settings,
        providers: Providers,
        vad_model: SileroModel,
        metrics: Metrics,
        mode: str,
        language: str,
        grant: Grant | None = None,
        turn_model: TurnModel | None = None,
    ) -> None:
        self.session_id = session_id
        self._turn_model = turn_model  # shared: how likely the person's turn is complete at a pause
        # The call token's limits on mode and language (None: any), and the app's id of the person, kept with
        # the call and logged with its id.
        self.grant = grant
        self.user = grant.user if grant else None
        self.pc = pc
        self.settings = settings
        self.metrics = metrics
        metrics.live_calls.add(self)  # a weak reference: /metrics shows ended calls that are not freed
        ahead = listens_ahead(settings.listen_ahead, providers.llm.reads_ahead, settings.provider("stt"))
        self.options = TurnOptions.from_settings(settings, listen_ahead=ahead)
        echo = EchoGate()
        self.track = SpeechTrack(self._segment_started, self._segment_done, metrics.frame_gap.observe, echo.sent)
        self.events = EventChannel()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.responder = Responder(
            session_id, settings, providers, metrics, self.track, self.send, self.spawn, mode, language
        )
        hearing = Hearing(
            vad_model.stream(), self.track, echo, self.options, self.options.hangover_for(mode),
            metrics.false_starts.inc,
        )  # fmt: skip
        self.turn_taker = TurnTaker(hearing, self.options, self, metrics, mode, has_turn_model=turn_model is not None)
        self._inbound = InboundAudio()
        self.controls = CallControls()
        self._greeted = False  # connected once, and greeted
        self.reconnection = Reconnection(self)
        self.closed = asyncio.Event()
        self.started_at = time.monotonic()
        self.last_activity = self.started_at  # the person's last speech or typed message
        self._message_rate = MessageRate(settings.messages_per_second, settings.message_burst)
        self._closing: asyncio.Task[None] | None = None
        self.on_close: list[Callable[[], None]] = []
        # Observers of what the call sends its client, and of each start-over (mode, language): its record
        # (server/history/recorder.py). They queue work and return; they never raise.
        self.on_event: list[Callable[[ServerEvent], None]] = []
        self.on_restart: list[Callable[[str, str], None]] = []
        # Observers of each inbound window as heard (16 kHz mono float32): a consented recording. They only queue.
        self.on_heard: list[Callable[[np.ndarray], None]] = []

    # -- wiring ---------------------------------------------------------------------------------------------
    def attach(self) -> None:
        self.spawn(self._watch_limits())
        self.wire(self.pc)

    def wire(self, pc: RTCPeerConnection) -> None:
        """The handlers of the call's connection (the first, or one that replaced it: server/reconnect.py)."""

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.spawn(self._read_audio(track, pc))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != "events":
                return
            channel.on("message", self._receive)
            self.events.attach(channel, self._send_ready)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            logger.info("call %s: connection %s", self.session_id, pc.connectionState, extra=self._log("connection"))
            if pc is not self.pc:
                return  # a connection this call has replaced
            if pc.connectionState == "connected":
                self.reconnection.returned()
                if not self._greeted:
                    self._greeted = True
                    self.turn_taker.say(self.responder.greeting())
            elif pc.connectionState in ("failed", "closed"):
                if self.ending:  # the client hung up after "ended": nothing is left to wait for
                    await self.close()
                else:
                    self.reconnection.lost()

    @property
    def connected_once(self) -> bool:
        return self._greeted

    @property
    def ending(self) -> bool:
        return self._closing is not None or self.closed.is_set()

    def _log(self, event: str) -> dict[str, str]:
        return {"call": self.session_id, "event": event}

    # -- the turn-taker's hooks (server/dialogue/turn_taking.py: TurnHooks) -----------------------------------
    def send(self, event: ServerEvent) -> None:
        self.events.send(event)
        for observer in self.on_event:
            observer(event)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        # A task's failure is logged here, with the call it belongs to, rather than as asyncio's anonymous
        # "Task exception was never retrieved" whenever the garbage collector gets to it (or never).
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        work = getattr(task.get_coro(), "__qualname__", task.get_name())
        logger.error(
            "call %s: %s failed", self.session_id, work, exc_info=task.exception(), extra=self._log("task_failed")
        )

    def clear_output(self) -> None:
        self.track.clear()

    def hold_output(self) -> None:
        self.track.hold()

    def release_output(self) -> None:
        self.track.release()

    def backchannel(self, text: str) -> bool:
        return is_backchannel(text, self.responder.language)

    def person_active(self) -> None:
        self.last_activity = time.monotonic()

    def answer(self, handle: ReplyHandle, audio: np.ndarray | None, text: str | None) -> Coroutine[Any, Any, None]:
        return self.responder.answer(handle, audio, text)

    async def transcribe(self, audio: np.ndarray) -> str:
        return await self.responder.transcribe(audio)

    async def prefill(self, text: str) -> None:
        await self.responder.prefill(text)

    @property
    def reads_ahead(self) -> bool:
        return self.responder.reads_ahead

    async def turn_complete(self, audio: np.ndarray) -> float | None:
        if self._turn_model is None:
            return None
        return await self._turn_model.complete(audio)

    # -- the track's playback callbacks ---------------------------------------------------------------------
    def _segment_started(self, segment: Segment) -> None:
        self.responder.segment_started(segment)

    def _segment_done(self, segment: Segment) -> None:
        self.responder.segment_done(segment)

    # -- lifetime -------------------------------------------------------------------------------------------
    async def _watch_limits(self) -> None:
        """Ends a call that ran too long, or in which the person has said nothing for a long time."""
        settings = self.settings
        while True:
            now = time.monotonic()
            if now - self.started_at >= settings.max_call_s:
                return self.end("max_duration")
            if self.controls.pauses_idle:
                self.last_activity = now
            if now - self.last_activity >= settings.idle_s:
                return self.end("idle")
            await asyncio.sleep(min(1.0, settings.idle_s / 4, settings.max_call_s / 4))

    def answered(self) -> None:
        """The answer is on its way to the client: from now on its connection has ``connect_timeout_s`` to come up.
        (Not from the offer: gathering the server's own candidates, a TURN allocation included, takes time too.)"""
        self.spawn(self._watch_connecting())

    async def _watch_connecting(self) -> None:
        """Hangs up a call whose connection (ICE, then DTLS) is not up ``connect_timeout_s`` after the answer:
        candidates that cannot be reached, or a client that never used the answer, would hold a call slot until
        the peer timeout (and without any inbound track, for ever)."""
        timeout_s = self.settings.connect_timeout_s
        await asyncio.sleep(timeout_s)
        if self.pc.connectionState == "connected" or self.closed.is_set():
            return
        logger.info(
            "call %s: not connected after %.1f s (%s), hanging up", self.session_id, timeout_s,
            self.pc.connectionState, extra=self._log("connect_timeout"),
        )  # fmt: skip
        # Not one of the call's own tasks: close() cancels those, this one included.
        self._closing = asyncio.get_running_loop().create_task(self.close())
        self._closing.add_done_callback(self._task_done)  # a failure to close is logged with the call id too

    def end(self, reason: EndReason) -> None:
        """Ends the call from inside it: the client is told why, then the connection is closed."""
        if self._closing is not None or self.closed.is_set():
            return  # ending already (an "end" sent twice, or the idle limit as the person hangs up)
        logger.info("call %s: ending (%s)", self.session_id, reason, extra=self._log("ended"))
        self._send_scorecard()
        self.send(Ended(type="ended", reason=reason))

        async def close_soon() -> None:
            await asyncio.sleep(0.2)  # let the event leave before the connection goes
            await self.close()

        # Not one of the call's own tasks: close() cancels those.
        self._closing = asyncio.get_running_loop().create_task(close_soon())
        self._closing.add_done_callback(self._task_done)  # a failure to close is logged with the call id too

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for callback in self.on_close:
            callback()
        self.track.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.responder.forget()  # the shared chat model keeps nothing of this call
        # A call is a web of reference cycles (aiortc's handlers, the hooks), freed only when the garbage collector
        # runs: what holds native memory, threads or the person's audio is let go of here instead.
        self.turn_taker.close()
        self._inbound.close()
        self.track.stop()
        try:
            await self.pc.close()
        except Exception:  # aiortc half set up (an offer it could not answer): what it holds is let go anyway
            logger.exception("call %s: closing the peer connection failed", self.session_id, extra=self._log("closed"))
        self.pc.remove_all_listeners()
        self.events.detach()
        logger.info("call %s closed after %d turns", self.session_id, self.responder.turns, extra=self._log("closed"))

    # -- audio in -------------------------------------------------------------------------------------------
    async def _read_audio(self, track: MediaStreamTrack, pc: RTCPeerConnection) -> None:
        # Always drain the track: aiortc's inbound queue is unbounded.
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), self.settings.peer_timeout_s)
            except MediaStreamError:
                return
            except TimeoutError:
                # Browsers send audio packets all the time, even in silence: none means the peer is gone (unless
                # this is a connection the call has replaced).
                if pc is self.pc:
                    self.reconnection.lost()
                return
            if pc is not self.pc:
                return  # replaced: the new connection's track is read now
            self.metrics.inbound_frames.inc()
            try:
                windows = self._inbound.push(frame)
            except Exception:  # a frame we cannot resample: end the call in words rather than stop hearing
                logger.exception("call %s: inbound audio failed", self.session_id, extra=self._log("media_failed"))
                self.end("media_failed")
                return
            for window in windows:
                for heard in self.on_heard:
                    heard(window)
                self.turn_taker.hear(window)

    # -- client messages ------------------------------------------------------------------------------------
    def _send_ready(self) -> None:
        responder = self.responder
        ready = Ready(type="ready", session_id=self.session_id, mode=responder.mode, language=responder.language)
        self.events.open_with(ready)

    def _send_scorecard(self, asked: bool = False) -> None:
        scorecard = self.responder.scorecard()
        if scorecard is not None:
            self.send(scorecard)
        elif asked:
            self.send(Error(type="error", code="bad_message", message="there is no interview in this call to score"))

    def _receive(self, raw: str | bytes) -> None:
        """aiortc calls this inside its data-channel receive path: an exception raised here would end there, and
        could take the channel with it. A message the server fails on is an ``error`` event; the call goes on."""
        try:
            self._on_message(raw)
        except Exception:
            logger.exception("call %s: acting on a client message failed", self.session_id, extra=self._log("message"))
            self.send(Error(type="error", code="internal", message="the server could not act on that message"))

    def _on_message(self, raw: str | bytes) -> None:
        if not self._message_rate.allow():  # before parsing: a flood costs as little as it can
            if self._message_rate.should_tell():
                words = f"too many messages: at most {self.settings.messages_per_second:g} a second; some were dropped"
                self.send(Error(type="error", code="rate_limited", message=words))
            return
        try:
            message = parse_client_message(raw)
        except BadMessage as exc:
            self.send(Error(type="error", code=exc.code, message=str(exc)))  # type: ignore[typeddict-item]
            return
        if isinstance(message, TextInput):
            self.person_active()  # typing counts as the person being there; control messages do not
            self.turn_taker.answer_text(message.text)
        elif isinstance(message, ModeChange):
            if not self._allowed(message.mode, message.language):
                return
            self.turn_taker.barge_in()
            self._restart(message.mode, message.language)
        elif isinstance(message, Reset):
            self.turn_taker.barge_in()
            self._restart()
        elif isinstance(message, Control):
            if message.name == "talk" and message.on:
                self.person_active()
            if (refused := self.controls.apply(message, self.turn_taker)) is not None:
                self.send(Error(type="error", code="bad_message", message=refused))
            else:
                self.send(self.controls.event())
        elif isinstance(message, Command) and message.name == "end":
            self.end("requested")  # the scorecard goes first
        elif isinstance(message, Command):
            self._send_scorecard(asked=True)

    def _allowed(self, mode: str, language: str | None) -> bool:
        """A mode change stays within the call token's limits; one beyond them is refused and the call goes on."""
        if self.grant is None:
            return True
        try:
            self.grant.check(mode, language or self.responder.language)
        except TokenError as exc:
            self.send(Error(type="error", code="not_allowed", message=str(exc)))
            return False
        return True

    def _restart(self, mode: str | None = None, language: str | None = None) -> None:
        self.responder.restart(mode, language)
        for observer in self.on_restart:
            observer(self.responder.mode, self.responder.language)
        self.turn_taker.set_mode(self.responder.mode)
        self._send_ready()
        self.turn_taker.say(self.responder.greeting())
