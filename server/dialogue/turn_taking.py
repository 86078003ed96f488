"""Who speaks when, in one call. ``TurnTaker`` consumes the hearing's speech events window by window and owns
what a turn is made of: the pre-roll before an onset, the utterance, the speculative reply started at a pause,
listening ahead, and the barge-in decision. Each reply it starts is a ``ReplyHandle`` (server/dialogue/reply.py);
replies run one after another, a new one once the previous has recorded what was heard.

It reaches its call only through ``TurnHooks``, so it runs as well without WebRTC (tests/test_turn_taking.py
drives it with scripted speech probabilities and fake providers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from server.audio.hearing import Hearing
from server.audio.inbound import VAD_RATE, WINDOW
from server.audio.vad import WINDOW_MS, VadEvent, VadEventKind, VadState
from server.dialogue.ahead import ListeningAhead
from server.dialogue.reply import ReplyHandle, TurnClock
from server.dialogue.turn_end import TurnEnd
from server.metrics import Metrics
from server.protocol import ServerEvent, Speech, StateChange
from server.turn_options import TurnOptions

logger = logging.getLogger(__name__)


@dataclass
class Overlap:
    """Speech over the bot's reply, held while its words are transcribed: a backchannel, or a barge-in."""

    onset_ms: int
    earlier_windows: int  # windows of the turn it may take up, at the start of the utterance
    earlier: list[np.ndarray]
    reply: ReplyHandle | None  # the reply it is over
    paused: VadEvent | None = None  # the pause it is in now, if it is in one
    ended: VadEvent | None = None  # the end of the turn, waiting for the verdict
    judging: bool = False
    resumed: int = 0  # times the person went on after a pause (a verdict on fewer words is stale)


class TurnHooks(Protocol):
    """What the turn-taker asks of its call."""

    def send(self, event: ServerEvent) -> None:
        """An event to the client."""

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs ``work`` as one of the call's tasks (cancelled when it closes)."""

    def clear_output(self) -> None:
        """Drops the bot's queued audio now (a barge-in)."""

    def hold_output(self) -> None:
        """Silences the bot's audio from the next frame, keeping what is queued (speech over it, undecided)."""

    def release_output(self) -> None:
        """The bot's held audio goes on from where it stopped."""

    def backchannel(self, text: str) -> bool:
        """Whether ``text``, heard over the bot, lets it go on ("mm-hm", "yeah", a laugh)."""

    def person_active(self) -> None:
        """The person started or resumed speaking (the call's idle timer starts over)."""

    def answer(self, handle: ReplyHandle, audio: np.ndarray | None, text: str | None) -> Coroutine[Any, Any, None]:
        """The work of one reply to the person's audio or typed text, run as ``handle``'s task."""

    async def transcribe(self, audio: np.ndarray) -> str:
        """The words in ``audio`` (listening ahead)."""

    async def prefill(self, text: str) -> None:
        """Has the chat model read the conversation plus ``text`` into its cache (listening ahead)."""

    async def turn_complete(self, audio: np.ndarray) -> float | None:
        """How likely the turn in ``audio`` is complete (the end-of-turn model); None without one."""

    @property
    def reads_ahead(self) -> bool:
        """Whether reading ahead can help the next reply now (not in interviews: they prompt the app's text)."""


class TurnTaker:
    def __init__(
        self,
        hearing: Hearing,
        options: TurnOptions,
        hooks: TurnHooks,
        metrics: Metrics,
        mode: str = "chat",
        has_turn_model: bool = False,
    ) -> None:
        self._hearing = hearing
        self._options = options
        self._limits = options.limits_for(mode)
        self._has_turn_model = has_turn_model
        self._turn_end: TurnEnd | None = None  # the verdicts on the current pause
        self._hooks = hooks
        self._metrics = metrics
        self._preroll: deque[np.ndarray] = deque(maxlen=options.preroll_windows)
        self._utterance: deque[np.ndarray] | None = None
        self._ahead: ListeningAhead | None = None
        if options.listen_ahead:
            every_s, min_words = options.ahead_every_s, options.ahead_min_words
            self._ahead = ListeningAhead(
                hooks.transcribe, hooks.prefill, hooks.spawn, every_s=every_s, min_words=min_words
            )
        self._speculation: ReplyHandle | None = None  # started at a pause, waiting for the turn to end
        self._last_turn: tuple[list[np.ndarray], ReplyHandle] | None = None  # its speech, and its reply
        self._continuing = False  # the utterance takes up the turn before it (its speech comes first)
        self._overlap: Overlap | None = None  # speech over the bot, not yet known to be a barge-in
        self._current: ReplyHandle | None = None  # the reply started last
        self._listening = True  # False while the person is muted, or between push-to-talk presses
        self._quiet = np.zeros(WINDOW, dtype=np.float32)  # what is heard instead: the stream's time runs on

    # -- hearing --------------------------------------------------------------------------------------------
    def hear(self, window: np.ndarray) -> None:
        """One 32 ms window. Silero takes ~0.1 ms, so it runs right here: a thread hop would cost more and
        delay the barge-in decision."""
        if not self._listening:
            window = self._quiet  # kept in the utterance, whatever the client sends while muted
        event = self._hearing.update(window, heard=self._listening)
        utterance = self._utterance
        if utterance is not None:
            utterance.append(window)
            overlap = self._overlap
            long_ms = self._options.backchannel_max_ms
            if overlap is not None and self._hearing.detector.now_ms - overlap.onset_ms > long_ms:
                self._taking_floor(overlap)  # too long for "mm-hm": a person talking
            speaking = self._hearing.detector.state is VadState.SPEAKING
            if self._ahead is not None and self._hooks.reads_ahead and speaking:
                self._ahead.heard(len(utterance) * WINDOW, lambda: np.concatenate(utterance))
        else:
            self._preroll.append(window)
        if event is not None:
            self.on_vad(event)

    def on_vad(self, event: VadEvent) -> None:
        kind = event.kind
        if kind in (VadEventKind.PAUSE, VadEventKind.END) and self._ahead is not None:
            self._ahead.pause()  # the turn may be over: its transcription and reply need the models now
        if kind in (VadEventKind.START, VadEventKind.RESUME, VadEventKind.END) and self._turn_end is not None:
            self._turn_end.over()  # the pause it judged is over
            self._turn_end = None
        if kind in (VadEventKind.START, VadEventKind.RESUME):
            self._hooks.person_active()
        if kind is VadEventKind.START:
            earlier = self._taken_up()
            self._continuing = bool(earlier)
            self._utterance = deque([*earlier, *self._preroll], maxlen=self._options.max_utterance_windows)
            self._preroll.clear()
            if self._ahead is not None:
                self._ahead.reset()
            self._hooks.send(Speech(type="speech", event="start"))
            if self._bot_audible():
                # Over the bot: held (Hearing releases the hold on START), not cut until the words say it is
                # not a backchannel.
                self._overlap = Overlap(event.at_ms, len(earlier), earlier, self._current)
                self._hooks.hold_output()
            else:
                self.barge_in()
        elif kind is VadEventKind.PAUSE and self._utterance is not None:
            self._turn_end = TurnEnd(self._hearing.detector, self._limits, self._has_turn_model)
            if self._has_turn_model:
                self._hooks.spawn(self._judge_pause(self._turn_end, np.concatenate(self._utterance)))
            if self._overlap is not None:
                self._overlap.paused = event
                self._judge_overlap(self._overlap)
            elif self._options.speculate:
                # Start on the reply now, while the silence runs; it is dropped if the person goes on.
                if self._speculation is not None:  # never two: the first would wait for ever to be confirmed
                    self._speculation.cancel()
                self._speculation = self._speculate(event)
        elif kind is VadEventKind.RESUME and self._overlap is not None:
            self._overlap.resumed += 1
            self._overlap.judging = False
            self._overlap.paused = None  # that pause is over
        elif kind is VadEventKind.RESUME and self._speculation is not None:
            self._speculation.cancel()
            self._speculation = None
            self._metrics.speculations_dropped.inc()
        elif kind is VadEventKind.END and self._overlap is not None:
            self._overlap.ended = event  # the turn ends once the overlap's words say what it was
            self._judge_overlap(self._overlap)
        elif kind is VadEventKind.END and self._utterance is not None:
            speculation = self._speculation or self._speculate(event)  # a hang-over shorter than a pause
            self._last_turn = (self._speech(event), speculation)
            self._utterance, self._speculation, self._continuing = None, None, False
            self._hooks.send(Speech(type="speech", event="end"))
            speculation.confirm()
            if speculation.running:  # done already: transcription found no words
                self._hooks.send(StateChange(type="state", state="thinking"))

    def _speech(self, event: VadEvent) -> list[np.ndarray]:
        """The utterance up to the silence that ``event`` (a pause or the end) is in, and one quiet window."""
        assert self._utterance is not None
        windows = list(self._utterance)
        return windows[: len(windows) - self._quiet_windows(event) + 1]

    @staticmethod
    def _quiet_windows(event: VadEvent) -> int:
        return max(1, (event.window_ms + WINDOW_MS - event.at_ms) // WINDOW_MS)

    def _speculate(self, event: VadEvent) -> ReplyHandle:
        """Starts the reply to the utterance so far; it is heard only once ``confirm()``-ed."""
        speech = self._speech(event)  # Whisper gets the speech and one quiet window
        clock = TurnClock(ended_at=time.monotonic() - self._quiet_windows(event) * WINDOW_MS / 1000)
        turn_end = self._turn_end
        on_words = turn_end.words_say if turn_end else None
        handle = ReplyHandle(clock, speculative=True, on_words=on_words, continues=self._continuing)
        return self.start(handle, self._hooks.answer(handle, np.concatenate(speech), None))

    def _taken_up(self) -> list[np.ndarray]:
        """The speech of the last turn when the person is taking it up again (their reply is being prepared, or
        audible for less than ``continuation_s``): the new utterance begins with it. Empty otherwise."""
        last, self._last_turn = self._last_turn, None
        if last is None:
            return []
        speech, handle = last
        if handle is not self._current or not handle.running:
            return []  # the bot has answered it, or something else has been said since
        since = handle.audible_since
        if since is not None and time.monotonic() - since > self._options.continuation_s:
            return []  # the person is interrupting an answer they have been hearing
        return speech

    async def _judge_pause(self, turn_end: TurnEnd, audio: np.ndarray) -> None:
        """The end-of-turn model's verdict on the turn so far, for the pause it was asked about."""
        probability = None
        try:
            probability = await self._hooks.turn_complete(audio)
        finally:  # no verdict (the model failed) gives the silence its hang-over back
            turn_end.model_says(probability)
        if probability is not None:
            logger.debug("pause after %.1f s of turn: complete %.2f", len(audio) / VAD_RATE, probability)

    def close(self) -> None:
        """The call has ended (its tasks are cancelled): the person's audio and the replies go now."""
        self._preroll.clear()
        self._utterance = self._speculation = self._current = self._ahead = self._turn_end = self._last_turn = None
        self._overlap = None

    def set_mode(self, mode: str) -> None:
        """A new mode's silences."""
        self._limits = self._options.limits_for(mode)
        self._hearing.detector.set_hangover(self._limits.hangover)

    # -- the person's controls --------------------------------------------------------------------------------
    def listen(self, on: bool) -> None:
        """Whether the person's microphone counts (not while muted, nor between push-to-talk presses): what it
        sends meanwhile is heard as silence, so a turn in progress ends as if they had stopped talking."""
        self._listening = on

    def hold(self, held: bool) -> None:
        """A person who asked for a moment: the bot stops, and no silence ends their turn until they release it
        (then a silence that has lasted long enough ends it at the next window)."""
        self._hearing.detector.holding = held
        if held:
            self.barge_in()

    def end_turn_now(self) -> None:
        """Push-to-talk's button is up: the turn in progress ends now, with no hang-over."""
        event = self._hearing.detector.end_now()
        if event is not None:
            self.on_vad(event)

    # -- replies --------------------------------------------------------------------------------------------
    def answer_text(self, text: str) -> ReplyHandle:
        """Typed text: while the bot speaks it counts as a barge-in; it is answered like speech."""
        self.barge_in()
        handle = ReplyHandle(TurnClock(ended_at=time.monotonic()))
        return self.start(handle, self._hooks.answer(handle, None, text))

    def say(self, speak: Callable[[ReplyHandle], Coroutine[Any, Any, None]]) -> ReplyHandle:
        """A reply of the bot's own (a greeting), after whatever is being said now."""
        handle = ReplyHandle()
        return self.start(handle, speak(handle))

    def start(self, handle: ReplyHandle, work: Coroutine[Any, Any, None]) -> ReplyHandle:
        """Runs ``work`` as ``handle``'s task once the reply before it has finished. A call has at most one reply
        in flight: a handle cut while it waits is over only when the one before it is, so replies superseded in
        quick succession (a flood of typed text) never run side by side."""
        previous = self._current

        async def after_previous() -> None:
            try:
                if previous is not None:
                    # Let the interrupted reply record what was heard before the next turn reads the history.
                    await previous.over()
            except asyncio.CancelledError:
                work.close()  # the call is closing
                raise
            if not handle.begins():
                work.close()  # cut while it waited: it never begins, and it was over only once the one before was
                return
            await work

        handle.runs(self._hooks.spawn(after_previous()))
        self._metrics.live_replies.add(handle)  # weakly: /metrics shows replies that outlive their call
        self._current = handle
        return handle

    # -- speech over the bot: a backchannel, or a barge-in ------------------------------------------------------
    def _bot_audible(self) -> bool:
        current = self._current
        return current is not None and current.running and current.audible_since is not None

    def _judge_overlap(self, overlap: Overlap) -> None:
        """Transcribes the speech over the bot (once per pause), then resumes the bot or barges in."""
        if overlap.judging or self._utterance is None:
            return
        overlap.judging = True
        speech = list(self._utterance)[overlap.earlier_windows :]
        asked = overlap.resumed

        async def judge() -> None:
            text = await self._hooks.transcribe(np.concatenate(speech))
            logger.debug("speech over the bot: %r (%s)", text, "stale" if overlap.resumed != asked else "current")
            if overlap is not self._overlap or overlap.resumed != asked:
                return  # decided meanwhile (it went on too long), or they went on: the next pause judges again
            if self._hooks.backchannel(text):
                self._let_bot_go_on(overlap)
            else:
                self._taking_floor(overlap)

        self._hooks.spawn(judge())

    def _let_bot_go_on(self, overlap: Overlap) -> None:
        """A backchannel: the bot goes on from where it held, and what was said is not a turn."""
        self._overlap = None
        self._metrics.backchannels.inc()
        if overlap.earlier and overlap.reply is not None:  # the turn before may still be taken up
            self._last_turn = (overlap.earlier, overlap.reply)
        self._utterance, self._continuing = None, False
        if self._turn_end is not None:
            self._turn_end.over()
            self._turn_end = None
        self._hearing.detector.limit_silence(0)  # their "mm-hm" is over: the next speech is a new onset
        self._hooks.send(Speech(type="speech", event="end"))
        self._hooks.release_output()

    def _taking_floor(self, overlap: Overlap) -> None:
        """Not a backchannel: the barge-in, late (the bot has been silent since the first window), then the turn
        goes on as if it had been one from the start."""
        logger.debug("speech over the bot takes the floor (ended: %s)", overlap.ended is not None)
        self._overlap = None
        self.barge_in()
        if overlap.ended is not None:
            self.on_vad(overlap.ended)
        elif overlap.paused is not None and self._options.speculate:
            if self._hearing.detector.state is VadState.STOPPING:  # still in the pause that was judged
                self._speculation = self._speculate(overlap.paused)

    # -- barge-in -------------------------------------------------------------------------------------------
    def barge_in(self) -> bool:
        """Stops the bot now: the outgoing audio is dropped at once, the reply's work cancelled."""
        current = self._current
        if current is None or not current.running:
            return False
        self._hooks.clear_output()
        current.cancel()
        return True
