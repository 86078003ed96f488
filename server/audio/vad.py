"""Voice activity: Silero VAD (ONNX, run by onnxruntime) and a synchronous speech state machine.

Thresholds (silero-vad ``VADIterator`` style hysteresis):
- a window is *speech* when its probability is >= ``threshold`` (0.5 by default);
- the first speech window is an *onset* (not yet confirmed): while the bot speaks, the session holds its audio
  at once, so the person hears it stop within a window of starting to talk;
- speech is *confirmed* after ``start_windows`` speech windows (3 x 32 ms by default; more while the bot speaks,
  to let laughter and coughs through), which filters clicks and coughs; the event carries the time of the
  onset. An onset that falls silent first, or that is not confirmed within ``2 * start_windows + 4`` windows,
  is *dropped*, and the held audio goes on where it stopped;
- once speaking, a window below ``threshold - 0.15`` starts a silence; when it has lasted ``pause_ms`` (96 ms)
  it is a *pause* (the dips between words are shorter), and a speech window after that *resumes* the turn;
- the turn *ends* when the silence lasts ``hangover_ms``, or the limit ``limit_silence()`` set for this silence
  (server/dialogue/turn_end.py decides it from what is heard in the pause), but never while ``holding`` (the
  person asked for a moment); ``end_now()`` ends it at once (push-to-talk's button released).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server.audio.inbound import VAD_RATE, WINDOW

logger = logging.getLogger(__name__)

CONTEXT = 64  # samples of the previous window that Silero v5+ expects in front of each window
# Between turns, digital silence (a muted microphone, a client sending zeros) is not run through Silero once it
# has lasted this many windows: by then the model's state has settled, and on 50 real clips padded with silence
# every speech event came out the same (onsets within one window). Within a turn every window is run, so a skip
# can never move the end of a turn. Quieter than 1 LSB of 16-bit audio is digital silence.
SILENT_WINDOWS_BEFORE_SKIP = 8
DIGITAL_SILENCE = 1.5 / 32768
WINDOW_MS = WINDOW * 1000 // VAD_RATE


class SileroModel:
    """The ONNX session, shared by every call (``run`` is thread-safe; the recurrent state is not kept here)."""

    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._sr = np.array(VAD_RATE, dtype=np.int64)

    def stream(self) -> SileroStream:
        return SileroStream(self)

    def run(self, audio: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        out, new_state = self._session.run(None, {"input": audio, "state": state, "sr": self._sr})
        return float(out[0][0]), new_state


class SileroStream:
    """One call's recurrent state and context; never reset on a timer, only for a new call."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._silent = 0  # consecutive digitally silent windows

    def __call__(self, window: np.ndarray, between_turns: bool = True) -> float:
        """The speech probability of one window; ``between_turns``: the person is not speaking, so long digital
        silence may skip the model."""
        if window.max() < DIGITAL_SILENCE and window.min() > -DIGITAL_SILENCE:
            self._silent += 1
            if between_turns and self._silent > SILENT_WINDOWS_BEFORE_SKIP:
                self._context = window[-CONTEXT:]
                return 0.0
        else:
            self._silent = 0
        audio = np.concatenate([self._context, window]).reshape(1, -1).astype(np.float32, copy=False)
        prob, self._state = self._model.run(audio, self._state)
        self._context = window[-CONTEXT:]
        return prob


class VadEventKind(enum.StrEnum):
    ONSET = "onset"  # a first speech window, not yet confirmed; at_ms = its time
    DROP = "drop"  # that onset was not speech after all
    START = "start"  # speech confirmed; at_ms = its onset
    PAUSE = "pause"  # the person has been quiet for pause_ms; at_ms = the start of the silence
    RESUME = "resume"  # speech again after a pause, before the hang-over ran out
    END = "end"  # the hang-over ran out: the turn is over; at_ms = the start of the silence


@dataclass(frozen=True)
class VadEvent:
    kind: VadEventKind
    at_ms: int  # stream time of the event's moment, from the first window of the call
    window_ms: int  # stream time of the window that decided it


class VadState(enum.StrEnum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


class SpeechDetector:
    """The state machine over per-window speech probabilities. Pure and synchronous: ~0.1 ms per window."""

    def __init__(
        self,
        threshold: float = 0.5,
        start_windows: int = 3,
        hangover_ms: int = 700,
        pause_ms: int = 96,
    ) -> None:
        self._threshold = threshold
        self._negative_threshold = max(threshold - 0.15, 0.01)
        self._start_windows = start_windows
        self._hangover_ms = hangover_ms
        self._pause_ms = pause_ms
        self.state = VadState.QUIET
        self._paused = False  # a PAUSE was reported for the current silence
        self._windows = 0
        self._run = 0  # consecutive speech windows while STARTING
        self._mark_ms = 0  # onset while STARTING, silence start while STOPPING
        self._limit_ms: int | None = None  # the current silence's own limit, instead of the hang-over
        self.holding = False  # the person asked for a moment: no silence ends their turn

    def confirm_after(self, start_windows: int) -> None:
        """Speech windows that confirm speech from now on (more while the bot speaks: server/audio/hearing.py)."""
        self._start_windows = start_windows

    def set_hangover(self, hangover_ms: int) -> None:
        """Silence that ends a turn from now on (a new mode)."""
        self._hangover_ms = hangover_ms

    def extend(self, extra_ms: int) -> None:
        """Gives the current silence ``extra_ms`` more than the hang-over before the turn ends."""
        self.limit_silence(self._hangover_ms + extra_ms)

    def limit_silence(self, limit_ms: int) -> None:
        """The current silence ends the turn once it has lasted ``limit_ms`` (more or less than the hang-over; when
        it has lasted that long already, at the next window)."""
        if self.state is VadState.STOPPING:
            self._limit_ms = limit_ms

    def end_now(self) -> VadEvent | None:
        """Ends the turn in progress now, silence or not (push-to-talk's button is up); None when there is none."""
        if not self.speaking:
            return None
        now = self.now_ms
        mark = self._mark_ms if self.state is VadState.STOPPING else now
        self.state, self._limit_ms = VadState.QUIET, None
        return VadEvent(VadEventKind.END, mark, now - WINDOW_MS)

    @property
    def now_ms(self) -> int:
        return self._windows * WINDOW_MS

    @property
    def speaking(self) -> bool:
        """True from confirmed speech until the end of the turn (pauses included)."""
        return self.state in (VadState.SPEAKING, VadState.STOPPING)

    def update(self, probability: float) -> VadEvent | None:
        at = self.now_ms
        self._windows += 1
        speech = probability >= self._threshold
        onset = False
        if self.state is VadState.QUIET:
            if not speech:
                return None
            self.state, self._run, self._mark_ms, onset = VadState.STARTING, 0, at, True
        if self.state is VadState.STARTING:
            if speech:
                self._run += 1
                if self._run >= self._start_windows:
                    self.state = VadState.SPEAKING
                    return VadEvent(VadEventKind.START, self._mark_ms, at)
                return VadEvent(VadEventKind.ONSET, at, at) if onset else None
            # Undecided windows (between the two thresholds) neither count nor reset, but not for ever.
            too_long = at - self._mark_ms >= (2 * self._start_windows + 4) * WINDOW_MS
            if probability < self._negative_threshold or too_long:
                self.state = VadState.QUIET
                return VadEvent(VadEventKind.DROP, self._mark_ms, at)
            return None
        if self.state is VadState.SPEAKING:
            if probability >= self._negative_threshold:
                return None
            self.state, self._mark_ms, self._paused = VadState.STOPPING, at, False
        # STOPPING
        if speech:
            self.state, self._limit_ms = VadState.SPEAKING, None
            return VadEvent(VadEventKind.RESUME, at, at) if self._paused else None
        silence_ms = at + WINDOW_MS - self._mark_ms
        limit_ms = self._hangover_ms if self._limit_ms is None else self._limit_ms
        if silence_ms >= limit_ms and not self.holding:
            self.state, self._limit_ms = VadState.QUIET, None
            return VadEvent(VadEventKind.END, self._mark_ms, at)
        if silence_ms >= self._pause_ms and not self._paused:
            self._paused = True
            return VadEvent(VadEventKind.PAUSE, self._mark_ms, at)
        return None
