"""How much silence ends the person's turn, decided anew at every pause from what is heard in it.

A fixed hang-over cuts people off who think aloud ("I would use a hash map, and then ... cache the results") and
keeps people who have finished waiting. At each pause two verdicts arrive while the silence runs:

- the end-of-turn model's (server/audio/turn_model.py), from the voice: within ~100 ms of the pause;
- the transcript's (server/dialogue/unfinished.py), from the words of the speculative transcription: a few
  hundred ms later. The reply cannot be heard before its transcript exists, so waiting for it costs no latency.

The silence that ends the turn is then:

- ``incomplete_ms`` (seconds, per mode) when the model says the turn is not complete, or the words trail off;
- ``complete_ms`` when the model says it is complete (and the words, if they are in yet, do not trail off): by
  default the mode's hang-over. On read speech the model calls most pauses at a natural dip inside a sentence
  complete (12 of 16 in bench/README.md), so trusting it to end turns sooner would cut people off; its "not
  complete" is what helps. ``PARLEY_TURN_COMPLETE_MS`` sets a shorter wait for operators whose callers it suits;
- until the model's verdict is in, up to ``incomplete_ms``: a verdict that is late (a busy machine) is waited
  for rather than overtaken by the hang-over, which would end the turn on silence alone. The speculative reply
  starts at the pause whatever the model says, so waiting for a verdict in time costs nothing; a model that
  fails gives the hang-over back at once.

Without a model (``PARLEY_TURN_MODEL=off``) only the words count, as before: words that trail off give the
hang-over ``unfinished_extra_ms`` more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

COMPLETE = 0.5  # the model's probability at or above which the turn is complete (its training threshold)


class Silence(Protocol):
    def limit_silence(self, limit_ms: int) -> None:
        """The current silence ends the turn once it has lasted ``limit_ms``."""


@dataclass(frozen=True)
class Limits:
    """One mode's silences, in ms."""

    hangover: int
    complete: int
    incomplete: int
    unfinished_extra: int  # without a model: more hang-over when the words trail off


class TurnEnd:
    """The verdicts on one silence. Stale once the person resumes or the turn ends (``over()``): verdicts that
    arrive later are ignored."""

    def __init__(self, silence: Silence, limits: Limits, has_model: bool) -> None:
        self._silence = silence
        self._limits = limits
        self._has_model = has_model
        self.probability: float | None = None  # the model's verdict
        self.unfinished: bool | None = None  # the words' verdict
        self._over = False
        self._waiting = has_model  # for the model's verdict
        if has_model:
            self._apply()

    def model_says(self, probability: float | None) -> None:
        """The model's verdict; None when it could not give one."""
        self.probability, self._waiting = probability, False
        self._apply()

    def words_say(self, unfinished: bool) -> None:
        self.unfinished = unfinished
        self._apply()

    def over(self) -> None:
        self._over = True

    def limit_ms(self) -> int:
        limits, probability, unfinished = self._limits, self.probability, self.unfinished
        if not self._has_model:
            return limits.hangover + (limits.unfinished_extra if unfinished else 0)
        if unfinished or (probability is not None and probability < COMPLETE):
            return max(limits.incomplete, limits.hangover)
        if probability is not None:
            return min(limits.complete, limits.hangover)
        if self._waiting:
            return max(limits.incomplete, limits.hangover)
        return limits.hangover

    def _apply(self) -> None:
        if not self._over:
            self._silence.limit_silence(self.limit_ms())
