"""One call's turn-taking knobs, with their defaults in one place: speech detection, barge-in, the end of a turn,
speculation and listening ahead. Built from ``Settings`` (which overrides a few of them from the environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.audio.inbound import VAD_RATE, WINDOW
from server.config import Settings
from server.dialogue.turn_end import Limits

# Silence (ms) that ends a turn, per mode: interview answers have thinking pauses of 1.2 s that must not end
# them; learners search for words; chat is quick. PARLEY_HANGOVER_MS sets one for every mode.
HANGOVER_MS = {"interview": 1300, "language": 1200, "chat": 700}
# With the end-of-turn model (server/dialogue/turn_end.py): the silence that ends a turn the model says is not
# complete (or whose words trail off). People who think aloud pause for 1-2 s mid-answer. A turn the model says
# is complete ends after the hang-over, or PARLEY_TURN_COMPLETE_MS: on read speech the model called 12 of 16
# mid-sentence pauses complete (bench/README.md), so by default its "complete" does not shorten the wait.
INCOMPLETE_MS = {"interview": 3000, "language": 3000, "chat": 2500}


@dataclass(frozen=True)
class TurnOptions:
    # Speech detection (server/audio/vad.py): a window is speech at >= threshold, silence below threshold - 0.15.
    vad_threshold: float = 0.5
    start_windows: int = 3  # consecutive 32 ms speech windows that confirm speech while the bot is quiet
    pause_ms: int = 96  # a silence this long is a pause (dips between words are shorter): speculation starts
    hangover_ms: dict[str, int] = field(default_factory=lambda: dict(HANGOVER_MS))  # per mode
    complete_ms: dict[str, int] = field(default_factory=lambda: dict(HANGOVER_MS))  # per mode
    incomplete_ms: dict[str, int] = field(default_factory=lambda: dict(INCOMPLETE_MS))  # per mode
    # Barge-in (server/audio/hearing.py): while the bot speaks, its audio is held at the first speech window,
    # and this many windows confirm a person talking (laughter and coughs are shorter).
    barge_in_windows: int = 8
    # How long a dropped onset keeps the bot held. A comma pause is 150-300 ms; a laugh's bursts then make one
    # pause instead of a stutter of stops and starts.
    release_grace_ms: int = 320
    # Without the end-of-turn model: words that trail off ("... because") give the current silence this much more
    # (server/dialogue/unfinished.py).
    unfinished_extra_ms: int = 1000
    # A person who starts talking again within this long of the bot's reply becoming audible (or before it is) is
    # taking up their own turn, not interrupting an answer: the two parts are one turn, answered once.
    continuation_s: float = 2.0
    # Speech over the bot is held and transcribed before it cuts the reply: "mm-hm", "yeah", a laugh let the bot go
    # on (server/dialogue/backchannel.py). Speech longer than this is a person taking the floor, whatever it says.
    backchannel_max_ms: int = 1000
    # Audio kept from before the speech onset (320 ms): Whisper needs the first phoneme.
    preroll_windows: int = 10
    max_utterance_windows: int = 30 * VAD_RATE // WINDOW  # Whisper reads 30 s at most
    # Speculation: at a pause the reply starts (transcription, generation, the first sentence's speech) and is
    # heard only once the hang-over confirms the turn is over.
    speculate: bool = True
    # Listening ahead (server/dialogue/ahead.py): a partial transcript once this much more speech has come in;
    # with no more than ahead_min_words words, nothing is worth reading ahead.
    listen_ahead: bool = False
    ahead_every_s: float = 1.0
    ahead_min_words: int = 3

    @classmethod
    def from_settings(cls, settings: Settings, listen_ahead: bool = False) -> TurnOptions:
        """``listen_ahead``: whether this server listens ahead (``listens_ahead()``, which knows the providers)."""
        hangover = dict(HANGOVER_MS)
        if settings.hangover_ms:
            hangover = dict.fromkeys(hangover, settings.hangover_ms)
        complete = dict.fromkeys(hangover, settings.turn_complete_ms) if settings.turn_complete_ms else hangover
        return cls(
            vad_threshold=settings.vad_threshold,
            start_windows=settings.vad_start_windows,
            barge_in_windows=max(settings.barge_in_windows, settings.vad_start_windows),
            hangover_ms=hangover,
            complete_ms=complete,
            listen_ahead=listen_ahead,
        )

    def hangover_for(self, mode: str) -> int:
        return self.hangover_ms[mode]

    def limits_for(self, mode: str) -> Limits:
        hangover, complete, incomplete = self.hangover_ms[mode], self.complete_ms[mode], self.incomplete_ms[mode]
        return Limits(hangover, complete, incomplete, self.unfinished_extra_ms)
