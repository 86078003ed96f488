"""A call's replies: one turn from the person's words (or audio) to the bot's spoken answer, greetings,
apologies, and what the outgoing track reports as each sentence plays. ``Call`` (server/session.py) wires
these to its hearing, barge-in and client messages."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np

from server.audio.outbound import Segment, SpeechTrack
from server.audio.vad import SpeechDetector
from server.config import Settings
from server.dialogue.conversation import Conversation
from server.dialogue.drift_guard import guard, heard_languages, reply_language
from server.dialogue.interview import Interview, reply_deltas
from server.dialogue.modes import APOLOGIES, Persona
from server.dialogue.turn import Reply, TurnClock
from server.dialogue.unfinished import UNFINISHED_EXTRA_MS, looks_unfinished
from server.metrics import Metrics
from server.providers.base import ProviderError, Providers, VoiceStyle

logger = logging.getLogger("server.session")  # one logger for a call's lines


class Replies:
    """The reply half of ``Call``; the attributes below are the call's."""

    session_id: str
    settings: Settings
    providers: Providers
    metrics: Metrics
    mode: str
    language: str
    persona: Persona
    track: SpeechTrack
    conversation: Conversation
    detector: SpeechDetector
    interview: Interview | None
    turns: int
    _rng: random.Random
    _reply_task: asyncio.Task[None] | None
    _reply: Reply | None
    _clock: TurnClock | None

    def send(self, kind: str, **fields: Any) -> None:
        raise NotImplementedError

    def _state(self, state: str) -> None:
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        raise NotImplementedError

    def _log(self, event: str) -> dict[str, str]:
        raise NotImplementedError

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
        if warm and self.interview is not None:  # (other modes warm after every reply: _run_reply)
            # Evaluate the prompt now, while the person listens, so their first turn starts warm.
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
                text = await self._transcribe(audio)
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
                prompt = self.conversation.with_user(text)
                deltas = reply_deltas(plan, self.providers.llm, prompt, temperature, max_tokens)
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

    async def _transcribe(self, audio: np.ndarray) -> str:
        """The person's words (a whole turn, or the turn so far when listening ahead)."""
        return await self.providers.stt.transcribe(audio, self.language, languages=heard_languages(self.mode))

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
        if self.interview is None:  # (interview turns prompt the model with the app's own messages)
            self._spawn(self.providers.llm.warm(self.conversation.messages()))  # while the person thinks

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
