"""Speech decisions for one call, window by window, knowing what the bot itself is playing.

- Echo: a window the echo gate takes for the bot's own voice counts as silence (``server/audio/echo.py``),
  except once the person's speech is confirmed: then the bot has stopped, and their own quiet sounds must not
  end their turn.
- While the bot speaks, the first speech window *holds* its audio (silence from the next frame, nothing
  dropped), so the person hears it stop within about one window of starting to talk. Confirming that it
  really is a person talking then takes ``barge_in_windows`` windows (laughter and coughs last fewer); if it
  is not confirmed, the bot goes on from the same word, ``release_grace_ms`` (320 ms) later: a person who starts with
  "Wait, ..." falls quiet at the comma before the eighth window, and must not hear the bot come back for a
  moment between their words. If it is confirmed, the session barges in: the queued audio is dropped and the
  reply cancelled.
- While the bot is quiet, speech is confirmed after the usual ``start_windows``.
Everything here is synchronous and runs in the audio path: Silero takes about 0.1 ms a window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from server.audio.echo import EchoGate
from server.audio.outbound import SpeechTrack
from server.audio.vad import SpeechDetector, VadEvent, VadEventKind, VadState
from server.turn_options import TurnOptions

logger = logging.getLogger(__name__)


class Hearing:
    """Owns the call's ``SpeechDetector``; ``vad`` is a ``SileroStream`` (or anything that gives a window's
    speech probability the same way)."""

    def __init__(
        self,
        vad: Callable[[np.ndarray, bool], float],
        track: SpeechTrack,
        echo: EchoGate,
        options: TurnOptions,
        hangover_ms: int,
        on_false_start: Callable[[], None] | None = None,
    ) -> None:
        self._vad = vad
        self.detector = SpeechDetector(options.vad_threshold, options.start_windows, hangover_ms, options.pause_ms)
        self._track = track
        self._echo = echo
        self._start_windows = options.start_windows
        self._barge_in_windows = max(options.barge_in_windows, options.start_windows)
        self._release_grace_ms = options.release_grace_ms
        self._on_false_start = on_false_start
        self._release_at_ms: int | None = None  # a dropped onset: the bot goes on then, unless speech comes back

    def update(self, window: np.ndarray, heard: bool = True) -> VadEvent | None:
        """One 32 ms window (float32, 16 kHz). Returns the turn events (start, pause, resume, end). A window not
        ``heard`` (the person is muted) is silence, without asking the VAD."""
        probability = 0.0
        if heard:
            # Between turns, long digital silence may skip Silero.
            probability = self._vad(window, not self.detector.speaking)
            quiet = self.detector.state is VadState.QUIET  # so the echo gain is learned from the bot alone
            if self._echo.is_echo(window, learn=quiet) and not self.detector.speaking:
                probability = 0.0
        playing = self._track.busy
        self.detector.confirm_after(self._barge_in_windows if playing else self._start_windows)
        event = self.detector.update(probability)
        if event is None:
            self._release_if_due()
            return None
        if event.kind is VadEventKind.ONSET:
            self._release_at_ms = None
            if playing:
                self._track.hold()
            return None
        if event.kind is VadEventKind.DROP:
            if self._track.held:
                self._release_at_ms = event.window_ms + self._release_grace_ms
                logger.debug("onset at %d ms was not speech: the bot goes on unless it comes back", event.at_ms)
            return None
        if event.kind is VadEventKind.START:
            # The session barges in on this event, synchronously: no frame leaves in between.
            self._release_at_ms = None
            self._track.release()
        return event

    def _release_if_due(self) -> None:
        if self._release_at_ms is None or self.detector.now_ms < self._release_at_ms:
            return
        self._release_at_ms = None
        if self._track.held:
            self._track.release()
            if self._on_false_start is not None:
                self._on_false_start()
