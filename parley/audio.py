"""Audio for a headless call: WAV files as int16 mono arrays, a microphone track that plays them in real time, and
a recording of what came back with each 20 ms frame's arrival time and level."""

from __future__ import annotations

import asyncio
import time
import wave
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

RATE = 48_000
FRAME = 960
SILENCE_DBFS = -45.0  # a received frame louder than this counts as reply audio


def read_wav(path: str | Path, rate: int = RATE) -> np.ndarray:
    """A 16-bit PCM WAV as int16 mono at ``rate`` (resampled with libswresample when needed)."""
    with wave.open(str(path)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels, source_rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return resample(pcm, source_rate, rate)


def as_pcm16(samples: np.ndarray) -> np.ndarray:
    """Audio as int16 mono: floats are taken as -1..1; a 2-D array is (samples, channels), mixed to one."""
    samples = np.asarray(samples)
    if samples.dtype.kind == "f":
        samples = np.clip(samples, -1.0, 1.0) * 32767
    elif samples.dtype.kind not in "iu":
        raise TypeError(f"audio must be integer samples or floats in -1..1, not {samples.dtype}")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.dtype == np.int16:
        return samples.reshape(-1)
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16).reshape(-1)


def resample(pcm: np.ndarray, source_rate: int, rate: int = RATE) -> np.ndarray:
    """int16 mono ``pcm`` at ``source_rate`` as int16 mono at ``rate`` (libswresample, as the server does)."""
    pcm = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1)
    if source_rate == rate or pcm.size == 0:
        return pcm
    resampler = AudioResampler(format="s16", layout="mono", rate=rate)
    frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = source_rate
    frames = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype(np.int16).tobytes())


def dbfs(pcm: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64))))) if pcm.size else 0.0
    return 20 * float(np.log10(max(rms, 1e-9) / 32768))


class Microphone(MediaStreamTrack):
    """Silence until ``play()`` is given audio; then that audio in real time, 20 ms a frame."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[np.ndarray] = []
        self._pts = 0
        self._start: float | None = None
        self.play_started_at: float | None = None  # monotonic time of the first sample of the clip
        self.finished = asyncio.Event()
        self.muted = False  # sends silence meanwhile (a clip being played goes on, unheard), as the page does
        # An acoustic echo, as from loudspeakers with no echo cancellation: what the call received comes back
        # into this microphone ``echo_delay_s`` later, ``echo_gain`` as loud (0: none).
        self.echo_gain = 0.0
        self.echo_delay_s = 0.15
        self._echo: deque[tuple[float, np.ndarray]] = deque()

    def hear_back(self, pcm: np.ndarray) -> None:
        """A received frame, played by the (simulated) loudspeaker now."""
        if self.echo_gain > 0:
            self._echo.append((time.monotonic(), pcm))

    def play(self, pcm: np.ndarray) -> None:
        """Queues ``pcm`` (int16 mono 48 kHz); ``finished`` is set once its last sample is sent."""
        self.play_started_at = None
        self.finished.clear()
        self._queue = [pcm[i : i + FRAME] for i in range(0, pcm.size, FRAME)]
        if not self._queue:
            self.finished.set()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:  # pts go on from where they were (a new connection: reconnect())
            self._start = time.monotonic() - self._pts / RATE
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = np.zeros(FRAME, dtype=np.int16)
        if self._queue:
            if self.play_started_at is None:
                self.play_started_at = time.monotonic()
            chunk = self._queue.pop(0)
            samples[: chunk.size] = chunk
            if not self._queue:
                self.finished.set()
        echo = self._echo_due()
        if echo is not None:
            n = min(FRAME, echo.size)
            mixed = samples[:n].astype(np.float64) + echo[:n] * self.echo_gain
            samples[:n] = np.clip(mixed, -32768, 32767)
        if self.muted:
            samples.fill(0)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, RATE)
        self._pts += FRAME
        return frame

    def successor(self) -> Microphone:
        """A live microphone that goes on where this ended one stopped (its clip, clock, mute and echo)."""
        new = Microphone()
        for name in ("_queue", "_pts", "play_started_at", "finished", "muted", "echo_gain", "echo_delay_s", "_echo"):
            setattr(new, name, getattr(self, name))
        return new

    def resync(self) -> None:
        """A new connection takes the track: its clock starts again, rather than catching up the gap in a burst."""
        self._start = None

    def _echo_due(self) -> np.ndarray | None:
        due = time.monotonic() - self.echo_delay_s
        backlog = int(self.echo_delay_s / 0.02) + 5
        while len(self._echo) > backlog:  # behind (the loop was busy): an echo path does not grow
            self._echo.popleft()
        if self._echo and self._echo[0][0] <= due:
            return self._echo.popleft()[1]
        return None


@dataclass
class Recording:
    """What came back: 48 kHz mono audio and, per 20 ms frame, its arrival time and level."""

    chunks: list[np.ndarray] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    def add(self, pcm: np.ndarray) -> None:
        self.chunks.append(pcm)
        self.arrivals.append(time.monotonic())
        self.levels.append(dbfs(pcm))

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    def first_loud_after(self, t: float, threshold: float = SILENCE_DBFS) -> float | None:
        return next((a for a, lv in zip(self.arrivals, self.levels, strict=True) if a >= t and lv > threshold), None)

    def last_loud(self, threshold: float = SILENCE_DBFS) -> float | None:
        pairs = zip(reversed(self.arrivals), reversed(self.levels), strict=True)
        return next((a for a, lv in pairs if lv > threshold), None)

    def audio_between(self, start: float, end: float) -> np.ndarray:
        parts = [c for c, a in zip(self.chunks, self.arrivals, strict=True) if start <= a <= end]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
