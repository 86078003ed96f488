"""Echo gating: is an inbound window the person, or the bot's own voice coming back through their microphone?

Browsers cancel most echo (the call page asks for ``echoCancellation``), but apps that embed us may not, and
Silero rightly calls the bot's own voice speech: without a gate the bot would interrupt itself. The server
knows exactly what it sent and when, so it can tell how loud an echo of it could be.

This is the classic level test of a double-talk detector (Geigel's), with the echo return loss learned per
call instead of assumed:
- ``reference`` is the loudest outgoing frame of the last ``ECHO_PATH_S`` (the client's playout buffer, its
  capture and both networks: an echo arrives up to that long after its frame left);
- while reference audio is about, each window's level / reference is noted; ``ECHO_PERCENTILE`` (the loud end) of those
  ratios over the last few seconds is the *echo gain* of this call (near 0 with a browser's echo
  cancellation, 0.1-0.3 with loudspeakers and no cancellation);
- a window is echo when the loudest of it and the two before is quieter than ``reference * echo gain *
  MARGIN``: a person talking over the bot is louder than the echo (the two windows before carry a word's
  stops and soft consonants across). Before enough ratios are known, the gain is taken as ``PRIOR_GAIN``.
When the echo is as loud as the person, no level test can tell them apart: they must speak up (or use echo
cancellation), which is what they would do on a speakerphone too.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import numpy as np

logger = logging.getLogger(__name__)

ECHO_PATH_S = 1.5  # generous: a stalled event loop delays the echo as seen here
REFERENCE_FLOOR = 10 ** (-50 / 20)  # outgoing audio quieter than -50 dBFS has no audible echo
ECHO_PERCENTILE = 95
MARGIN = 2.0  # +6 dB over the echo seen so far
MIN_GAIN = 0.01  # -40 dB: with echo cancellation, only the floor that no echo residue crosses
PRIOR_GAIN = 0.25  # -12 dB until measured (Geigel's detector assumes -6 dB of echo return loss)
MIN_RATIOS = 15  # about half a second of reference audio
HISTORY = 150  # windows: about 5 s


def rms(pcm: np.ndarray, full_scale: float = 1.0) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) / full_scale if pcm.size else 0.0


class EchoGate:
    """One per call. ``sent`` is called for every outgoing frame, ``is_echo`` for every inbound window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: deque[tuple[float, float]] = deque(maxlen=int(ECHO_PATH_S / 0.02) + 2)
        self._ratios: deque[float] = deque(maxlen=HISTORY)
        self._levels: deque[float] = deque(maxlen=3)

    def sent(self, pcm: np.ndarray) -> None:
        """An outgoing frame (int16) has just left."""
        self._sent.append((self._clock(), rms(pcm, 32768.0)))

    def reference(self) -> float:
        horizon = self._clock() - ECHO_PATH_S
        return max((level for at, level in self._sent if at >= horizon), default=0.0)

    def gain(self) -> float:
        if len(self._ratios) < MIN_RATIOS:
            return PRIOR_GAIN
        return float(np.percentile(self._ratios, ECHO_PERCENTILE))

    def is_echo(self, window: np.ndarray, learn: bool = True) -> bool:
        """``window``: float32 audio in [-1, 1]. False when nothing audible was sent lately.

        ``learn``: whether the window may count towards the echo gain. Not while the person may be talking:
        their voice would teach the gate that the echo is as loud as they are, and it would gate them out.
        """
        level = rms(window)
        self._levels.append(level)
        reference = self.reference()
        if reference < REFERENCE_FLOOR:
            return False
        threshold = reference * min(max(self.gain() * MARGIN, MIN_GAIN), 1.0)
        if learn:
            self._ratios.append(level / reference)
        return max(self._levels) < threshold
