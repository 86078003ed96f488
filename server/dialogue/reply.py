"""One reply: its handle (task, confirmation, gate, clock, what was heard), its speech (text deltas ->
sentences -> speech -> the outgoing track, cancellable at any point) and its timings.

Sentences are synthesized while the model is still generating the next ones. The reply knows what the person
heard: each sentence is a track segment whose ``played`` count moves only as frames actually leave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from server.audio.outbound import OutputResampler, Segment, SpeechTrack
from server.dialogue.text import SentenceSplitter, heard_part, spoken
from server.protocol import Metrics
from server.providers.base import TextToSpeech, VoiceStyle

logger = logging.getLogger(__name__)


@dataclass
class TurnClock:
    """Per-turn timings (monotonic seconds) for the ``metrics`` event."""

    ended_at: float  # end of the person's speech as the VAD saw it, or arrival of typed text
    stt_ms: int | None = None
    llm_started_at: float | None = None
    llm_first_token_ms: int | None = None
    llm_first_sentence_ms: int | None = None
    tts_first_audio_ms: int | None = None

    def transcribed(self, started: float) -> None:
        """Transcription, begun at ``started`` (monotonic), is done."""
        self.stt_ms = round((time.monotonic() - started) * 1000)

    def llm_starts(self) -> None:
        self.llm_started_at = time.monotonic()

    def _since_llm_start(self) -> int | None:
        return None if self.llm_started_at is None else round((time.monotonic() - self.llm_started_at) * 1000)

    def first_token(self) -> None:
        self.llm_first_token_ms = self._since_llm_start()

    def first_sentence(self) -> None:
        self.llm_first_sentence_ms = self._since_llm_start()

    def first_audio(self, tts_ms: int) -> None:
        self.tts_first_audio_ms = tts_ms

    def report(self, turn: int) -> Metrics:
        """The ``metrics`` event, as the turn's first reply frame is sent (now)."""
        return Metrics(
            type="metrics",
            turn=turn,
            stt_ms=self.stt_ms,
            llm_first_token_ms=self.llm_first_token_ms,
            llm_first_sentence_ms=self.llm_first_sentence_ms,
            tts_first_audio_ms=self.tts_first_audio_ms,
            response_ms=round((time.monotonic() - self.ended_at) * 1000),
        )


class ReplyHandle:
    """One reply, from the moment it is started until it has been heard or cut; nothing else holds pieces of it.

    - ``task``: its work (``TurnTaker.start`` runs it after the previous reply has finished);
    - the turn's confirmation: a *speculative* reply is started at a pause while the person may still go on, and
      says and records nothing until ``confirm()`` (the hang-over ran out); others are confirmed from the start;
    - ``gate``: its audio waits behind it until the turn is committed (the transcript sent, the history kept);
    - ``clock``: the turn's timings for the ``metrics`` event (none for greetings and apologies), taken once;
    - ``speech``: the ``Reply`` speaking for it, which knows what the person heard.
    """

    def __init__(
        self,
        clock: TurnClock | None = None,
        speculative: bool = False,
        on_words: Callable[[bool], None] | None = None,
        continues: bool = False,
    ) -> None:
        self.clock = clock
        self.speculative = speculative
        self.continues = continues  # the person's words take up the turn before: its reply is forgotten
        self.audible_since: float | None = None  # monotonic time its first sound was played
        self._turn_over = asyncio.Event()
        if not speculative:
            self._turn_over.set()
        self._on_words = on_words  # whether the words so far trail off: how long their pause may last
        self.gate = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.speech: Reply | None = None
        self._began = False  # its work has begun (the reply before it is over)
        self._cut = False

    @property
    def turn_over(self) -> bool:
        return self._turn_over.is_set()

    def confirm(self) -> None:
        """The person's turn is over: a speculative reply may now be heard."""
        self._turn_over.set()

    async def wait_turn_over(self) -> None:
        await self._turn_over.wait()

    def words_heard(self, unfinished: bool) -> None:
        """The speculative transcript is in: whether its words trail off decides, with the end-of-turn model, how
        long the pause may last before the turn is over (server/dialogue/turn_end.py)."""
        if not self.turn_over and self._on_words is not None:
            self._on_words(unfinished)

    def runs(self, task: asyncio.Task[None]) -> None:
        """``task`` does the reply's work."""
        self.task = task

    def speaks(self, speech: Reply) -> None:
        """``speech`` is the reply's speech now (an apology replaces a failed turn's)."""
        self.speech = speech

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def over(self) -> None:
        """Returns once the reply's work is over, however it ended (at once if it is over already)."""
        if self.task is not None and not self.task.done():
            await asyncio.wait([self.task])

    def begins(self) -> bool:
        """The reply before it is over: True when its work may begin now, False when it was cut while it waited."""
        self._began = True
        return not self._cut

    def cancel(self) -> bool:
        """Cuts the reply (its work, and its speech where it has begun); False when it was already over. A reply
        still waiting for the one before it is not interrupted: it ends, without beginning, once that one is over,
        so the reply after it never runs beside that one (replies cut in quick succession, a flood of text)."""
        if not self.running:
            return False
        self._cut = True
        if self._began:
            self.task.cancel()  # type: ignore[union-attr]
        return True

    def take_clock(self) -> TurnClock | None:
        """The turn's clock, once: its first reply frame reports the metrics."""
        clock, self.clock = self.clock, None
        return clock


class Reply:
    """A reply's speech: sentences synthesized and written to the track, and what of them was played."""

    def __init__(
        self,
        track: SpeechTrack,
        tts: TextToSpeech,
        style: VoiceStyle,
        on_first_token: Callable[[], None] | None = None,
        on_first_sentence: Callable[[], None] | None = None,
        on_first_audio: Callable[[int], None] | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self._track = track
        self._tts = tts
        self._style = style
        self._on_first_token = on_first_token
        self._on_first_sentence = on_first_sentence
        self._on_first_audio = on_first_audio
        # Audio is held back until the gate opens: a speculative reply is prepared while the person may still
        # go on talking, and only reaches the track once their turn is confirmed over.
        self._gate = gate
        self.segments: list[Segment] = []
        self._done: set[Segment] = set()
        self._synthesized = False
        self._played_all = asyncio.Event()

    # -- what the person heard ------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """True once any of its audio has gone out."""
        return any(s.played for s in self.segments)

    @property
    def confirmed(self) -> bool:
        """False while a speculative reply still waits for the person's turn to end."""
        return self._gate is None or self._gate.is_set()

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    def heard(self) -> str:
        """Sentences played in full, plus the played words of the one that was cut."""
        words: list[str] = []
        for segment in self.segments:
            if segment in self._done:
                words.append(segment.text)
                continue
            if segment.played:
                words.append(heard_part(segment.text, segment.played_fraction))
            break
        return " ".join(w for w in words if w)

    def segment_done(self, segment: Segment) -> None:
        """Called (by the responder) when the track has sent the last sample of ``segment``."""
        self._done.add(segment)
        self._check_played()

    def _check_played(self) -> None:
        if self._synthesized and len(self._done) == len(self.segments):
            self._played_all.set()

    # -- producing it ---------------------------------------------------------------------------------------
    async def speak(self, deltas: AsyncIterator[str]) -> None:
        """Speaks the streamed text and returns when the person has heard all of it."""
        sentences: asyncio.Queue[str | None] = asyncio.Queue()

        async def split() -> None:
            splitter = SentenceSplitter()
            first = True
            async for delta in deltas:
                if first and self._on_first_token is not None:
                    self._on_first_token()
                first = False
                for sentence in splitter.feed(delta):
                    if sentences.empty() and not self.segments and self._on_first_sentence is not None:
                        self._on_first_sentence()
                        self._on_first_sentence = None
                    sentences.put_nowait(sentence)
            sentences.put_nowait(splitter.flush())
            sentences.put_nowait(None)

        async def synthesize() -> None:
            while (sentence := await sentences.get()) is not None:
                text = spoken(sentence, self._style.language)
                if text:
                    await self._say(text)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(split())
                group.create_task(synthesize())
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        self._synthesized = True
        self._check_played()
        await self._played_all.wait()

    async def say(self, text: str) -> None:
        """Speaks fixed text (a greeting), sentence by sentence."""

        async def sentences() -> AsyncIterator[str]:
            yield text

        await self.speak(sentences())

    async def _say(self, text: str) -> None:
        segment: Segment | None = None
        resampler: OutputResampler | None = None
        started = time.monotonic()
        async for chunk in self._tts.synthesize(text, self._style):
            if resampler is None:
                resampler = OutputResampler(chunk.rate)
                if not self.segments and self._on_first_audio is not None:
                    self._on_first_audio(round((time.monotonic() - started) * 1000))
            pcm = resampler.push(chunk.pcm)
            if segment is None:
                if self._gate is not None:
                    await self._gate.wait()
                segment = self._begin(text)
            self._track.write(segment, pcm)
        if segment is None:
            return  # the engine produced no audio for this text
        if resampler is not None:
            self._track.write(segment, resampler.flush())
        self._track.finish(segment)

    def _begin(self, text: str) -> Segment:
        segment = self._track.begin(text)
        self.segments.append(segment)
        return segment
