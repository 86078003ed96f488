"""One call: inbound audio -> speech detection -> reply turns -> the outgoing track, and the events channel."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from server.audio.echo import EchoGate
from server.audio.hearing import Hearing
from server.audio.inbound import VAD_RATE, WINDOW, InboundAudio
from server.audio.outbound import SpeechTrack
from server.audio.vad import WINDOW_MS, SileroModel, SpeechDetector, VadEvent, VadEventKind, VadState
from server.config import Settings
from server.dialogue.ahead import ListeningAhead, listens_ahead
from server.dialogue.conversation import Conversation
from server.dialogue.interview import Interview, interview_for
from server.dialogue.modes import PERSONAS, Persona
from server.dialogue.turn import Reply, TurnClock
from server.events import BadMessage, Command, EventChannel, ModeChange, Reset, TextInput, parse_client_message
from server.metrics import Metrics
from server.providers.base import Providers
from server.replies import Replies

logger = logging.getLogger(__name__)

PREROLL_WINDOWS = 10  # audio kept from before the speech onset (320 ms): Whisper needs the first phoneme
MAX_UTTERANCE_WINDOWS = 30 * VAD_RATE // WINDOW  # Whisper reads 30 s at most


class Call(Replies):
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
    ) -> None:
        self.session_id = session_id
        self.pc = pc
        self.settings = settings
        self.providers = providers
        self.metrics = metrics
        self.mode, self.language = mode, language
        self.persona: Persona = PERSONAS[mode]
        echo = EchoGate()
        self.track = SpeechTrack(self._segment_started, self._segment_done, metrics.frame_gap.observe, echo.sent)
        self.conversation = Conversation(self.persona.system_prompt(language))
        self.detector = SpeechDetector(settings.vad_threshold, settings.vad_start_windows, self._hangover(self.persona))
        self.hearing = Hearing(
            vad_model.stream(), self.detector, self.track, echo,
            settings.vad_start_windows, settings.barge_in_windows, metrics.false_starts.inc,
        )  # fmt: skip
        self._inbound = InboundAudio()
        self._preroll: deque[np.ndarray] = deque(maxlen=PREROLL_WINDOWS)
        self._utterance: deque[np.ndarray] | None = None
        ahead = listens_ahead(settings.listen_ahead, providers.llm.reads_ahead, settings.provider("stt"))
        self._ahead = ListeningAhead(self._transcribe, self._prefill, self._spawn) if ahead else None
        self.events = EventChannel()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reply_task: asyncio.Task[None] | None = None
        self._reply: Reply | None = None
        self._clock: TurnClock | None = None
        self._speculation: tuple[asyncio.Task[None], asyncio.Event] | None = None
        self._greeted = False
        self._rng = random.Random()
        self.interview: Interview | None = None
        self._new_interview()
        self.turns = 0
        self.closed = asyncio.Event()
        self.started_at = time.monotonic()
        self.last_activity = self.started_at  # the person's last speech or typed message
        self._closing: asyncio.Task[None] | None = None
        self.on_close: list[Callable[[], None]] = []

    # -- wiring ---------------------------------------------------------------------------------------------
    def attach(self) -> None:
        pc = self.pc
        self._spawn(self._watch_limits())

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._read_audio(track))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != "events":
                return
            channel.on("message", self._on_message)
            self.events.attach(channel, self._send_ready)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            logger.info("call %s: connection %s", self.session_id, pc.connectionState, extra=self._log("connection"))
            if pc.connectionState == "connected" and not self._greeted:
                self._greeted = True
                self._greet()
            elif pc.connectionState in ("failed", "closed"):
                await self.close()

    def _log(self, event: str) -> dict[str, str]:
        return {"call": self.session_id, "event": event}

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch_limits(self) -> None:
        """Ends a call that ran too long, or in which the person has said nothing for a long time."""
        settings = self.settings
        while True:
            now = time.monotonic()
            if now - self.started_at >= settings.max_call_s:
                return self.end("max_duration")
            if now - self.last_activity >= settings.idle_s:
                return self.end("idle")
            await asyncio.sleep(min(1.0, settings.idle_s / 4, settings.max_call_s / 4))

    def end(self, reason: str) -> None:
        """Ends the call from inside it: the client is told why, then the connection is closed."""
        logger.info("call %s: ending (%s)", self.session_id, reason, extra=self._log("ended"))
        self._send_scorecard()
        self.send("ended", reason=reason)

        async def close_soon() -> None:
            await asyncio.sleep(0.2)  # let the event leave before the connection goes
            await self.close()

        # Not one of the call's own tasks: close() cancels those.
        self._closing = asyncio.get_running_loop().create_task(close_soon())

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
        self.track.stop()
        await self.pc.close()
        logger.info("call %s closed after %d turns", self.session_id, self.turns, extra=self._log("closed"))

    # -- events to the client -------------------------------------------------------------------------------
    def send(self, kind: str, **fields: Any) -> None:
        self.events.send(kind, **fields)

    def _send_ready(self) -> None:
        self.events.open_with("ready", session_id=self.session_id, mode=self.mode, language=self.language)

    def _state(self, state: str) -> None:
        self.send("state", state=state)

    def _send_scorecard(self, asked: bool = False) -> None:
        if self.interview is not None:
            self.send("scorecard", **self.interview.scorecard())
        elif asked:
            self.send("error", code="bad_message", message="there is no interview in this call to score")

    # -- hearing --------------------------------------------------------------------------------------------
    async def _read_audio(self, track: MediaStreamTrack) -> None:
        # Always drain the track: aiortc's inbound queue is unbounded.
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), self.settings.peer_timeout_s)
            except MediaStreamError:
                return
            except TimeoutError:
                # Browsers send audio packets all the time, even in silence: none means the peer is gone.
                self.end("peer_gone")
                return
            self.metrics.inbound_frames.inc()
            for window in self._inbound.push(frame):
                self.hear(window)

    def hear(self, window: np.ndarray) -> None:
        """One 32 ms window. Silero takes ~0.1 ms, so it runs right here: a thread hop would cost more and
        delay the barge-in decision."""
        event = self.hearing.update(window)
        utterance = self._utterance
        if utterance is not None:
            utterance.append(window)
            # Interview turns send the model the app's own prompt (the judged facts), not the words: no use.
            if self._ahead is not None and self.interview is None and self.detector.state is VadState.SPEAKING:
                self._ahead.heard(len(utterance) * WINDOW, lambda: np.concatenate(utterance))
        else:
            self._preroll.append(window)
        if event is not None:
            self._on_vad(event)

    def _on_vad(self, event: VadEvent) -> None:
        kind = event.kind
        if kind in (VadEventKind.PAUSE, VadEventKind.END) and self._ahead is not None:
            self._ahead.pause()  # the turn may be over: its transcription and reply need the models now
        if kind in (VadEventKind.START, VadEventKind.RESUME):
            self.last_activity = time.monotonic()
        if kind is VadEventKind.START:
            self._utterance = deque(self._preroll, maxlen=MAX_UTTERANCE_WINDOWS)
            self._preroll.clear()
            if self._ahead is not None:
                self._ahead.reset()
            self.send("speech", event="start")
            self.barge_in()
        elif kind is VadEventKind.PAUSE and self._utterance is not None:
            # Start on the reply now, while the hang-over runs; it is dropped if the person goes on.
            self._speculation = self._speculate(event)
        elif kind is VadEventKind.RESUME and self._speculation is not None:
            self._speculation[0].cancel()
            self._speculation = None
            self.metrics.speculations_dropped.inc()
        elif kind is VadEventKind.END and self._utterance is not None:
            speculation = self._speculation or self._speculate(event)  # a hang-over shorter than a pause
            self._utterance, self._speculation = None, None
            self.send("speech", event="end")
            task, confirmed = speculation
            confirmed.set()
            if not task.done():  # done already: transcription found no words
                self._state("thinking")

    def _speculate(self, event: VadEvent) -> tuple[asyncio.Task[None], asyncio.Event]:
        """Starts the reply to the utterance so far; it waits for ``confirmed`` before it is heard."""
        assert self._utterance is not None
        windows = list(self._utterance)
        quiet = max(1, (event.window_ms + WINDOW_MS - event.at_ms) // WINDOW_MS)
        speech = windows[: len(windows) - quiet + 1]  # Whisper gets the speech and one quiet window
        clock = TurnClock(ended_at=time.monotonic() - quiet * WINDOW_MS / 1000)
        confirmed = asyncio.Event()
        return self._start_reply(self._respond(np.concatenate(speech), None, clock, confirmed)), confirmed

    # -- listening ahead (server/dialogue/ahead.py) ----------------------------------------------------------
    async def _prefill(self, text: str) -> None:
        await self.providers.llm.prefill(self.conversation.with_user(text))

    # -- barge-in -------------------------------------------------------------------------------------------
    def barge_in(self) -> bool:
        """Stops the bot now: the outgoing audio is dropped at once, the reply's work cancelled."""
        task = self._reply_task
        if task is None or task.done():
            return False
        self.track.clear()
        task.cancel()
        return True

    # -- client messages ------------------------------------------------------------------------------------
    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = parse_client_message(raw)
        except BadMessage as exc:
            self.send("error", code=exc.code, message=str(exc))
            return
        self.last_activity = time.monotonic()
        if isinstance(message, TextInput):
            self.barge_in()  # typed text while the bot speaks counts as a barge-in
            self._start_reply(self._respond(None, message.text, TurnClock(ended_at=time.monotonic())))
        elif isinstance(message, ModeChange):
            self.barge_in()
            self.mode = message.mode
            self.language = message.language or self.language
            self.persona = PERSONAS[self.mode]
            self._restart()
        elif isinstance(message, Reset):
            self.barge_in()
            self._restart()
        elif isinstance(message, Command) and message.name == "end":
            self.end("requested")  # the scorecard goes first
        elif isinstance(message, Command):
            self._send_scorecard(asked=True)

    def _restart(self) -> None:
        self.conversation.reset(self.persona.system_prompt(self.language))
        self._new_interview()
        self.detector.hangover_ms = self._hangover(self.persona)
        self._send_ready()
        self._greet()

    def _new_interview(self) -> None:
        # English interviews run on the question bank, their structure kept by the app (dialogue/interview.py).
        self.interview = interview_for(self.mode, self.language, self.settings, self.providers, self._rng)
        if self.interview is not None:
            self.interview.prime(self.conversation)

    def _hangover(self, persona: Persona) -> int:
        return self.settings.hangover_ms or persona.hangover_ms
