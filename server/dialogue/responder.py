"""What a call says: one turn from the person's words (or audio) to the bot's spoken answer, greetings, apologies,
and what the outgoing track reports as each sentence plays. It keeps the dialogue's state (mode, persona,
conversation, interview). Which reply runs when is the turn-taker's (server/dialogue/turn_taking.py); each
reply's pieces are its ``ReplyHandle``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from server.audio.outbound import Segment, SpeechTrack
from server.config import Settings
from server.dialogue.conversation import Conversation, Message, estimate_tokens
from server.dialogue.drift_guard import guard, heard_languages, reply_language
from server.dialogue.interview import Interview, Plan, interview_for
from server.dialogue.modes import APOLOGIES, PERSONAS, Persona, Revisit
from server.dialogue.reply import Reply, ReplyHandle
from server.dialogue.unfinished import looks_unfinished
from server.metrics import Metrics
from server.protocol import (
    Caption,
    Error,
    ErrorCode,
    Interrupted,
    Scorecard,
    ServerEvent,
    State,
    StateChange,
    Transcript,
)
from server.providers.base import ChatMessage, ProviderError, Providers, VoiceStyle

logger = logging.getLogger("server.session")  # one logger for a call's lines

# The longest a greeting waits for what the person's history says (the correction a language lesson revisits, the
# level and questions an interview continues from), when that read is still under way as the call connects (a
# loaded database; normally it answered in ms, long before): past this, today's greeting, with no more delay than
# this to the first audio.
HISTORY_GRACE_S = 0.3
PROMPT_EXTRA_TOKENS = 24  # "<|im_start|>assistant\n" and drift_guard's "(Reply in Japanese.)", with room to spare


class Responder:
    def __init__(
        self,
        session_id: str,
        settings: Settings,
        providers: Providers,
        metrics: Metrics,
        track: SpeechTrack,
        send: Callable[[ServerEvent], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        mode: str,
        language: str,
    ) -> None:
        self.session_id = session_id
        self.settings = settings
        self.providers = providers
        self.metrics = metrics
        self._track = track
        self._send = send
        self._spawn = spawn
        self.mode, self.language = mode, language
        self.persona: Persona = PERSONAS[mode]
        # Trimmed by tokens too, counted by the model's own tokenizer where it has one here (the embedded model).
        count_tokens = getattr(providers.llm, "count_tokens", estimate_tokens)
        self.conversation = Conversation(
            self.persona.system_prompt(language), budget=self._history_budget(), count_tokens=count_tokens
        )
        self._rng = random.Random()
        self.interview: Interview | None = None
        self._new_interview()
        self.turns = 0
        self._last_turn: tuple[Message, Plan | None] | None = None  # its user message, its interview plan
        self._speaking: ReplyHandle | None = None  # the reply whose speech is running
        self._greeted = False
        # Language practice: the look-up of a correction of an earlier session to open with, and what to call
        # when the greeting revisits it (server/history/corrections_api.py)
        self._revisit_lookup: tuple[asyncio.Future[Revisit | None], Callable[[Revisit], None]] | None = None
        # Interviews: the read of the person's past interviews, which the first question waits for
        # (server/history/continuity.py)
        self._past_lookup: asyncio.Future[None] | None = None

    # -- the dialogue's state -------------------------------------------------------------------------------
    def restart(self, mode: str | None = None, language: str | None = None) -> None:
        """Starts over, in a new mode or language where given."""
        if mode is not None:
            self.mode = mode
            self.language = language or self.language
            self.persona = PERSONAS[self.mode]
        self.conversation.reset(self.persona.system_prompt(self.language))
        self.conversation.budget = self._history_budget()
        self._new_interview()
        # A new session: it may revisit a correction too; a restarted interview continues without a read
        self._greeted, self._revisit_lookup, self._past_lookup = False, None, None

    def _new_interview(self) -> None:
        # English interviews run on the question bank, their structure kept by the app (dialogue/interview.py).
        self.interview = interview_for(self.mode, self.language, self.settings, self.providers, self._rng)
        if self.interview is not None:
            self.interview.prime(self.conversation)

    def expect_revisit(self, lookup: asyncio.Future[Revisit | None], said: Callable[[Revisit], None]) -> bool:
        """A correction of an earlier session to open with is being looked up (as the call starts): the greeting
        revisits it if the look-up has answered by then, or within ``HISTORY_GRACE_S``; else it is today's."""
        if self._greeted or not self.persona.revisits(self.language):
            return False
        self._revisit_lookup = (lookup, said)
        return True

    def expect_past(self, lookup: asyncio.Future[None]) -> None:
        """The person's past interviews are being read (as the call starts; ``lookup`` hands them to the interview):
        the first question is picked with them if they have come by then, or within ``HISTORY_GRACE_S``."""
        if not self._greeted:
            self._past_lookup = lookup

    @property
    def reads_ahead(self) -> bool:
        """Interview turns send the model the app's own prompt (the judged facts), not the words: no use."""
        return self.interview is None

    def scorecard(self) -> Scorecard | None:
        if self.interview is None:
            return None
        return Scorecard(type="scorecard", **self.interview.scorecard())  # type: ignore[typeddict-item]

    def _state(self, state: State) -> None:
        self._send(StateChange(type="state", state=state))

    def _log(self, event: str) -> dict[str, str]:
        return {"call": self.session_id, "event": event}

    def _style(self, language: str | None = None) -> VoiceStyle:
        voice, persona = getattr(self.settings, f"voice_{self.mode}"), self.persona
        return VoiceStyle(voice, persona.instructions, language or self.language, persona.speaking_rate)

    def _sampling(self) -> tuple[float, int]:
        persona = self.persona
        if self.settings.provider("llm") == "openai":
            return persona.remote_temperature, persona.remote_max_tokens
        return persona.temperature, min(persona.max_tokens, self.settings.llm_max_tokens)

    def _history_budget(self) -> int:
        """The prompt's tokens: the model's context less the reply's cap and what goes around the history (the
        reply's opening, the language reminder on the last message)."""
        return self.settings.llm_context - self._sampling()[1] - PROMPT_EXTRA_TOKENS

    # -- replies --------------------------------------------------------------------------------------------
    def greeting(self) -> Callable[[ReplyHandle], Coroutine[Any, Any, None]]:
        """The greeting, chosen now (and the interview's first question); said as a reply of its own."""
        interview = self.interview
        question = interview.first_question() if interview is not None else None
        lookup, self._revisit_lookup = self._revisit_lookup, None
        past, self._past_lookup = self._past_lookup, None
        self._greeted = True  # a later greeting (a restart) is a new session's: today's
        if lookup is not None:
            return lambda handle: self._greet_revisiting(handle, *lookup)
        if interview is not None and past is not None and not past.done():
            return lambda handle: self._greet_interviewing(handle, interview, past)
        text = self.persona.greeting(self._rng, self.language, question.text if question else None)
        return lambda handle: self._speak_fixed(handle, text)

    async def _within_grace(self, lookup: asyncio.Future[Any], what: str) -> bool:
        """Whether ``lookup`` has answered, waiting up to ``HISTORY_GRACE_S`` for it (it goes on if not)."""
        try:
            await asyncio.wait_for(asyncio.shield(lookup), HISTORY_GRACE_S)  # at once when it has answered
            return True
        except TimeoutError:
            logger.info("call %s: %s not read within %.1f s; today's greeting", self.session_id, what,
                        HISTORY_GRACE_S, extra=self._log("history_late"))  # fmt: skip
            return False

    async def _greet_interviewing(self, handle: ReplyHandle, interview: Interview, past: asyncio.Future[None]) -> None:
        """An interview's greeting once its past has been read (or ``HISTORY_GRACE_S`` has gone): the first question
        picked again with it, at the level the last interview ended at (nothing has been said yet)."""
        if await self._within_grace(past, "past interviews") and interview is self.interview:
            question = interview.reopen()
        else:
            question = interview.current
        text = self.persona.greeting(self._rng, self.language, question.text if question else None)
        await self._speak_fixed(handle, text)

    async def _greet_revisiting(
        self, handle: ReplyHandle, lookup: asyncio.Future[Revisit | None], said: Callable[[Revisit], None]
    ) -> None:
        """Language practice's greeting, revisiting a correction where its look-up has answered (normally long
        before: it takes milliseconds, the call's connection hundreds), the model told which one in its prompt."""
        revisit = lookup.result() if await self._within_grace(lookup, "the correction to revisit") else None
        if revisit is not None:
            self.conversation.reset(self.persona.system_prompt(self.language, revisit))  # nothing said yet to keep
            said(revisit)
        text = self.persona.greeting(self._rng, self.language, None, revisit)
        # A prompt that revisits a correction is this call's own: not an opening worth keeping for the next calls.
        await self._speak_fixed(handle, text, opening=revisit is None)

    async def _speak_fixed(self, handle: ReplyHandle, text: str, warm: bool = True, opening: bool = True) -> None:
        reply = Reply(self._track, self.providers.tts, self._style())
        handle.take_clock()  # greetings and apologies have no turn metrics
        if warm:
            # The chat model reads the system prompt (seconds, on a cold cache: the first call after start-up, or
            # after another call's conversation) while the greeting is said, not after it, when the person may
            # already be talking.
            self._spawn(self.providers.llm.warm(self.conversation.messages(), opening=opening))
        await self._run_reply(handle, reply, lambda: reply.say(text))
        if warm and self.interview is not None:  # (other modes warm after every reply: _run_reply)
            # The greeting is part of the prompt now: read it too, while the person listens.
            self._spawn(self.providers.llm.warm(self.conversation.messages()))

    async def answer(self, handle: ReplyHandle, audio: np.ndarray | None, text: str | None) -> None:
        """One turn. A speculative ``handle``: transcription, generation and the first sentence's synthesis go
        ahead, but nothing is said or recorded until the turn-taker confirms the turn is over."""
        clock = handle.clock
        assert clock is not None
        speaking: asyncio.Task[None] | None = None
        if handle.continues:
            self._take_back_last_turn()
        if not handle.speculative:
            self._state("thinking")
        try:
            if audio is not None:
                started = time.monotonic()
                text = await self.transcribe(audio)
                clock.transcribed(started)
                if text and not handle.turn_over:  # trailing words ("... because") mean they are thinking
                    handle.words_heard(looks_unfinished(text, self.language))
            if not text:  # nothing intelligible (a cough, noise): keep listening
                if handle.turn_over:
                    self._state("listening")
                return
            language = reply_language(self.mode, self.language, text)
            reply = Reply(
                self._track, self.providers.tts, self._style(language),
                on_first_token=clock.first_token, on_first_sentence=clock.first_sentence,
                on_first_audio=clock.first_audio, gate=handle.gate,
            )  # fmt: skip
            temperature, max_tokens = self._sampling()
            plan = await self.interview.plan(text) if self.interview is not None else None
            if plan is not None:  # the app keeps the interview's structure; the model phrases the feedback
                deltas = plan.deltas(self.providers.llm, temperature, max_tokens)
            else:  # language practice and chat: sentences in another language are caught before they are said
                deltas = guard(
                    lambda prompt: self.providers.llm.stream(prompt, temperature=temperature, max_tokens=max_tokens),
                    self.conversation.with_user(text), self.mode, language, self.language,
                )  # fmt: skip
            clock.llm_starts()
            speaking = asyncio.ensure_future(self._run_reply(handle, reply, lambda: reply.speak(deltas)))
            await handle.wait_turn_over()
            self.turns += 1
            logger.debug("call %s heard: %s", self.session_id, text)  # transcripts only when debugging
            said = Transcript(type="transcript", role="user", text=text, interrupted=False)
            if handle.continues:
                said["continues"] = True
            self._send(said)
            self._last_turn = (self.conversation.add_user(text), plan)
            if plan is not None:
                plan.commit()  # the turn is the person's for sure now: the interview moves on
            handle.gate.set()
            await speaking
        except ProviderError as exc:
            self._fail("provider_failed", str(exc))
            if exc.stage != "tts":
                await self._apologize(handle)
        except Exception:
            logger.exception("call %s: turn failed", self.session_id)
            self._fail("internal", "something went wrong on the server; please try again")
            await self._apologize(handle)
        finally:
            if speaking is not None and not speaking.done():
                speaking.cancel()  # dropped speculation: the person went on talking
                await asyncio.wait([speaking])

    def _take_back_last_turn(self) -> None:
        """The person took up their last turn again just after the bot began to answer it: that turn, and the reply
        cut in it, leave the conversation (and an interview's judgement of it is undone), so the whole of what
        they say is heard, answered and judged once."""
        if self._last_turn is None:
            return  # taken back already (by an earlier speculation on the same words)
        message, plan = self._last_turn
        self._last_turn = None
        self.conversation.take_back(message)
        if plan is not None:
            plan.undo()
        self.turns -= 1
        self.metrics.continued_turns.inc()

    async def transcribe(self, audio: np.ndarray) -> str:
        """The person's words (a whole turn, or the turn so far when listening ahead)."""
        return await self.providers.stt.transcribe(audio, self.language, languages=heard_languages(self.mode))

    async def prefill(self, text: str) -> None:
        """Listening ahead: the model reads the conversation and the words so far into its cache."""
        await self.providers.llm.prefill(self.conversation.with_user(text))

    def forget(self) -> None:
        """The call is over: the chat model drops the conversation from its cache (the next caller's is theirs)."""
        self.providers.llm.forget(self.conversation.messages())

    async def _run_reply(
        self, handle: ReplyHandle, reply: Reply, speak: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Runs the reply to its end, or records what was heard when the person barges in. (``speak`` makes the
        speech only here: a reply cut before it began leaves no coroutine that was never awaited.)"""
        handle.speaks(reply)
        self._speaking = handle
        try:
            await speak()
        except asyncio.CancelledError:
            self._track.clear()
            if reply.started:
                heard = reply.heard()
                self.conversation.add_assistant(heard, interrupted=True)
                self.metrics.barge_ins.inc()
                self._send(Interrupted(type="interrupted", heard=heard))
                self._send(Transcript(type="transcript", role="assistant", text=heard, interrupted=True))
            if reply.confirmed:  # a dropped speculation was never announced
                self._state("listening")
            raise
        finally:
            self._speaking = None
        self.conversation.add_assistant(reply.text)
        self._send(Transcript(type="transcript", role="assistant", text=reply.text, interrupted=False))
        self._state("listening")
        if self.interview is None:  # (interview turns prompt the model with the app's own messages)
            self._spawn(self.providers.llm.warm(self.conversation.messages()))  # while the person thinks

    async def _apologize(self, handle: ReplyHandle) -> None:
        """A short spoken apology, so a person who is not reading the screen knows to say it again."""
        try:
            await self._speak_fixed(handle, APOLOGIES.get(self.language, APOLOGIES["en"]), warm=False)
        except ProviderError:
            self._state("listening")  # speech synthesis is failing too: the error event has to do

    def _fail(self, code: ErrorCode, message: str) -> None:
        self._track.clear()
        self._send(Error(type="error", code=code, message=message))
        self._state("listening")

    # -- the track's playback callbacks (run inside recv(), on the loop) ------------------------------------
    def segment_started(self, segment: Segment) -> None:
        handle = self._speaking
        reply = handle.speech if handle is not None else None
        if reply is not None and segment in reply.segments:
            self._send(Caption(type="caption", role="assistant", text=segment.text))  # live captions
        if handle is None or reply is None or not reply.segments or segment is not reply.segments[0]:
            return
        self._state("speaking")
        handle.audible_since = time.monotonic()
        clock = handle.take_clock()
        if clock is None:
            return  # the greeting has no turn metrics
        report = clock.report(self.turns)
        self.metrics.observe_turn(report)
        logger.info("call %s: turn %s %s", self.session_id, self.turns, report, extra=self._log("turn"))
        self._send(report)

    def segment_done(self, segment: Segment) -> None:
        reply = self._speaking.speech if self._speaking is not None else None
        if reply is not None and segment in reply.segments:
            reply.segment_done(segment)


def opening_messages(mode: str, language: str, settings: Settings, providers: Providers) -> list[ChatMessage]:
    """What every call in ``mode`` and ``language`` starts its prompt with, before its greeting: the system prompt,
    and the interview's example exchange (what a call's greeting warms; the server warms the default at start-up)."""
    interview = interview_for(mode, language, settings, providers, random.Random())
    if interview is not None:
        return interview.prompt()
    return Conversation(PERSONAS[mode].system_prompt(language)).messages()
