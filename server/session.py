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

from server.admission import watch_call_limits
from server.audio.echo import EchoGate
from server.audio.hearing import Hearing
from server.audio.inbound import VAD_RATE, WINDOW, InboundAudio
from server.audio.outbound import Segment, SpeechTrack
from server.audio.vad import WINDOW_MS, SileroModel, SpeechDetector, VadEvent, VadEventKind
from server.config import Settings
from server.dialogue.conversation import Conversation
from server.dialogue.drift_guard import guard, heard_languages, reply_language
from server.dialogue.interview import Interview, interview_for, reply_deltas
from server.dialogue.modes import APOLOGIES, PERSONAS, Persona
from server.dialogue.turn import Reply, TurnClock
from server.dialogue.turn_end import UNFINISHED_EXTRA_MS, looks_unfinished
from server.events import BadMessage, Command, EventChannel, ModeChange, Reset, TextInput, parse_client_message
from server.metrics import Metrics
from server.providers.base import ProviderError, Providers, VoiceStyle

logger = logging.getLogger(__name__)

PREROLL_WINDOWS = 10  # audio kept from before the speech onset (320 ms): Whisper needs the first phoneme
MAX_UTTERANCE_WINDOWS = 30 * VAD_RATE // WINDOW  # Whisper reads 30 s at most


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
        self._spawn(watch_call_limits(self))

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
        if self._utterance is not None:
            self._utterance.append(window)
        else:
            self._preroll.append(window)
        if event is not None:
            self._on_vad(event)

    def _on_vad(self, event: VadEvent) -> None:
        kind = event.kind
        if kind in (VadEventKind.START, VadEventKind.RESUME):
            self.last_activity = time.monotonic()
        if kind is VadEventKind.START:
            self._utterance = deque(self._preroll, maxlen=MAX_UTTERANCE_WINDOWS)
            self._preroll.clear()
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

    # -- replies --------------------------------------------------------------------------------------------
    def _start_reply(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        previous = self._reply_task

        async def after_previous() -> None:
            try:
                if previous is not None and not previous.done():
                    # Let the interrupted reply record what was heard before the next turn reads the history.
                    await asyncio.wait([previous])
            except asyncio.CancelledError:
                work.close()  # cancelled before it began
                raise
            await work

        self._reply_task = self._spawn(after_previous())
        return self._reply_task

    def _style(self, language: str | None = None) -> VoiceStyle:
        voice, persona = getattr(self.settings, f"voice_{self.mode}"), self.persona
        return VoiceStyle(voice, persona.instructions, language or self.language, persona.speaking_rate)

    def _sampling(self) -> tuple[float, int]:
        persona = self.persona
        if self.settings.provider("llm") == "openai":
            return persona.remote_temperature, persona.remote_max_tokens
        return persona.temperature, min(persona.max_tokens, self.settings.llm_max_tokens)

    def _greet(self) -> None:
        question = self.interview.first_question().text if self.interview is not None else None
        text = self.persona.greeting(self._rng, self.language, question)
        self._start_reply(self._speak_fixed(text))

    async def _speak_fixed(self, text: str, warm: bool = True) -> None:
        reply = Reply(self.track, self.providers.tts, self._style())
        self._clock = None
        await self._run_reply(reply, reply.say(text))
        if warm:  # evaluate the prompt now, while the person listens, so their first turn starts warm
            self._spawn(self.providers.llm.warm(self.conversation.messages()))

    async def _respond(
        self, audio: np.ndarray | None, text: str | None, clock: TurnClock, confirmed: asyncio.Event | None = None
    ) -> None:
        """One turn. With ``confirmed`` it is speculative: transcription, generation and the first sentence's
        synthesis go ahead, but nothing is said or recorded until the session confirms the turn is over."""
        self._clock = clock
        gate = asyncio.Event()
        speaking: asyncio.Task[None] | None = None
        if confirmed is None:
            self._state("thinking")
        try:
            if audio is not None:
                started = time.monotonic()
                text = await self.providers.stt.transcribe(audio, self.language, languages=heard_languages(self.mode))
                clock.stt_ms = round((time.monotonic() - started) * 1000)
                if confirmed is not None and not confirmed.is_set() and looks_unfinished(text, self.language):
                    self.detector.extend(UNFINISHED_EXTRA_MS)  # they are thinking: give the pause more time
            if not text:  # nothing intelligible (a cough, noise): keep listening
                if confirmed is None or confirmed.is_set():
                    self._state("listening")
                return
            language = reply_language(self.mode, self.language, text)
            reply = Reply(
                self.track, self.providers.tts, self._style(language),
                on_first_token=clock.first_token, on_first_sentence=clock.first_sentence,
                on_first_audio=clock.first_audio, gate=gate,
            )  # fmt: skip
            temperature, max_tokens = self._sampling()
            plan = await self.interview.plan(text) if self.interview is not None else None
            if plan is not None:  # the app keeps the interview's structure; the model phrases the feedback
                deltas = reply_deltas(plan, self.providers.llm, self.conversation.with_user(text), temperature, max_tokens)
            else:  # language practice and chat: sentences in another language are caught before they are said
                deltas = guard(
                    lambda prompt: self.providers.llm.stream(prompt, temperature=temperature, max_tokens=max_tokens),
                    self.conversation.with_user(text), self.mode, language, self.language,
                )  # fmt: skip
            clock.llm_started_at = time.monotonic()
            speaking = asyncio.ensure_future(self._run_reply(reply, reply.speak(deltas)))
            if confirmed is not None:
                await confirmed.wait()
            self.turns += 1
            logger.debug("call %s heard: %s", self.session_id, text)  # transcripts only when debugging
            self.send("transcript", role="user", text=text, interrupted=False)
            self.conversation.add_user(text)
            if plan is not None:
                plan.commit()  # the turn is the person's for sure now: the interview moves on
            gate.set()
            await speaking
        except ProviderError as exc:
            self._fail("provider_failed", str(exc))
            if exc.stage != "tts":
                await self._apologize()
        except Exception:
            logger.exception("call %s: turn failed", self.session_id)
            self._fail("internal", "something went wrong on the server; please try again")
            await self._apologize()
        finally:
            if speaking is not None and not speaking.done():
                speaking.cancel()  # dropped speculation: the person went on talking
                await asyncio.wait([speaking])

    async def _run_reply(self, reply: Reply, speaking: Coroutine[Any, Any, None]) -> None:
        """Runs the reply to its end, or records what was heard when the person barges in."""
        self._reply = reply
        try:
            await speaking
        except asyncio.CancelledError:
            self.track.clear()
            if reply.started:
                heard = reply.heard()
                self.conversation.add_assistant(heard, interrupted=True)
                self.metrics.barge_ins.inc()
                self.send("interrupted", heard=heard)
                self.send("transcript", role="assistant", text=heard, interrupted=True)
            if reply.confirmed:  # a dropped speculation was never announced
                self._state("listening")
            raise
        finally:
            self._reply = None
        self.conversation.add_assistant(reply.text)
        self.send("transcript", role="assistant", text=reply.text, interrupted=False)
        self._state("listening")

    async def _apologize(self) -> None:
        """A short spoken apology, so a person who is not reading the screen knows to say it again."""
        try:
            await self._speak_fixed(APOLOGIES.get(self.language, APOLOGIES["en"]), warm=False)
        except ProviderError:
            self._state("listening")  # speech synthesis is failing too: the error event has to do

    def _fail(self, code: str, message: str) -> None:
        self.track.clear()
        self.send("error", code=code, message=message)
        self._state("listening")

    # -- the track's playback callbacks (run inside recv(), on the loop) ------------------------------------
    def _segment_started(self, segment: Segment) -> None:
        reply = self._reply
        if reply is not None and segment in reply.segments:
            self.send("caption", role="assistant", text=segment.text)  # live captions, as each sentence plays
        if reply is None or not reply.segments or segment is not reply.segments[0]:
            return
        self._state("speaking")
        clock, self._clock = self._clock, None
        if clock is None:
            return  # the greeting has no turn metrics
        report = clock.report(self.turns)
        self.metrics.observe_turn(report)
        logger.info("call %s: turn %s %s", self.session_id, self.turns, report, extra=self._log("turn"))
        self.send("metrics", **report)

    def _segment_done(self, segment: Segment) -> None:
        if self._reply is not None and segment in self._reply.segments:
            self._reply.segment_done(segment)
