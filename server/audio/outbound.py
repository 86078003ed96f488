"""The outgoing audio track: the call's clock, paced 20 ms frames, cleared at once on barge-in.

Reply audio is queued as *segments* (one sentence each, with its text), so the session knows exactly which
words have gone out: a segment's ``played`` count advances only as its frames leave in ``recv()``.

``hold()`` sends silence without dropping anything (the person may be starting to talk: they hear the bot stop
at once, while the session makes sure it is speech); ``release()`` goes on from the same sample.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler, Packet

from server.audio.opus import OpusEncoder

logger = logging.getLogger(__name__)

OUT_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
TIME_BASE = Fraction(1, OUT_RATE)
# A jump between one frame's last sample and the next frame's first (audio starting out of silence, cut by a
# barge-in, held or released) is heard as a click: the next frame fades from where the last one stopped over 5 ms.
DECLICK_SAMPLES = 240
DECLICK_JUMP = 1000  # about -30 dBFS: smaller steps are not heard
_FADE_IN = np.linspace(0.0, 1.0, DECLICK_SAMPLES, endpoint=False, dtype=np.float32)


@dataclass(eq=False)
class Segment:
    """One sentence of a reply: its text and its 48 kHz s16 mono audio, written as it is synthesized."""

    text: str
    chunks: deque[np.ndarray] = field(default_factory=deque)
    queued: int = 0  # samples written so far
    played: int = 0  # samples sent so far
    complete: bool = False

    @property
    def played_fraction(self) -> float:
        return self.played / self.queued if self.queued else 0.0


SegmentCallback = Callable[[Segment], None]


class SpeechTrack(MediaStreamTrack):
    """One per call. pts counts samples and never resets; the clock is anchored at the first ``recv()``."""

    kind = "audio"

    def __init__(
        self,
        on_segment_start: SegmentCallback | None = None,
        on_segment_done: SegmentCallback | None = None,
        on_frame_gap: Callable[[float], None] | None = None,
        on_sent: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        super().__init__()
        self.on_frame_gap = on_frame_gap  # seconds between two frames leaving: the pacing as it really was
        self.on_sent = on_sent  # every frame's samples as it leaves (the echo gate's reference)
        self.held = False
        self._last_sent: float | None = None
        self._segments: deque[Segment] = deque()
        self._pts = 0
        self._start: float | None = None
        self.on_segment_start = on_segment_start
        self.on_segment_done = on_segment_done
        self._opus: OpusEncoder | None = OpusEncoder(OUT_RATE)
        self._last_sample = 0  # of the last frame sent

    # -- writing (the reply side) --------------------------------------------------------------------------
    def begin(self, text: str) -> Segment:
        segment = Segment(text)
        self._segments.append(segment)
        return segment

    def write(self, segment: Segment, pcm: np.ndarray) -> None:
        if pcm.size and segment in self._segments:
            segment.chunks.append(pcm.astype(np.int16, copy=False))
            segment.queued += pcm.size

    def finish(self, segment: Segment) -> None:
        segment.complete = True

    def hold(self) -> None:
        """Silence from the next frame on, keeping the queue (and the words heard) as they are."""
        self.held = True

    def release(self) -> None:
        self.held = False

    def clear(self) -> Segment | None:
        """Drop everything queued, synchronously. Returns the segment that was playing, if one was."""
        head = self._segments[0] if self._segments else None
        self._segments.clear()
        self.held = False
        return head if head is not None and head.played > 0 else None

    @property
    def busy(self) -> bool:
        """True while reply audio is queued or playing."""
        return bool(self._segments)

    # -- the clock (aiortc's sender calls this) ------------------------------------------------------------
    async def recv(self) -> Packet | AudioFrame:
        """The next frame, Opus-encoded here (server/audio/opus.py): aiortc only wraps it in RTP."""
        frame = await self.next_frame()
        if self._opus is None:  # stopped while this frame waited for its time
            raise MediaStreamError
        return self._opus.encode(frame)

    def stop(self) -> None:
        """Ends the track and lets go of what it holds now (the encoder and its threads, queued audio, the call's
        callbacks), rather than when the garbage collector gets to the ended call."""
        super().stop()
        self._segments.clear()
        self._opus = None
        self.on_segment_start = self.on_segment_done = self.on_frame_gap = self.on_sent = None

    async def next_frame(self) -> AudioFrame:
        """The next 20 ms of audio, when it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now - self._pts / OUT_RATE  # pts go on from where they were (a new connection)
        else:
            wait = self._start + self._pts / OUT_RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
        sent = time.monotonic()
        if self._last_sent is not None and self.on_frame_gap is not None:
            self.on_frame_gap(sent - self._last_sent)
        self._last_sent = sent
        pcm = self.take_frame()
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OUT_RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += FRAME_SAMPLES
        return frame

    def resync(self) -> None:
        """A new connection takes the track: its clock starts again from its next frame, with pts going on, rather
        than catching up the gap in a burst."""
        self._start = self._last_sent = None

    def take_frame(self) -> np.ndarray:
        """The next 20 ms of samples, now (``next_frame`` paces it; tests drive the track with it directly)."""
        pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16) if self.held else self._take(FRAME_SAMPLES)
        self._declick(pcm)
        if self.on_sent is not None:
            self.on_sent(pcm)
        return pcm

    def _declick(self, pcm: np.ndarray) -> None:
        """Fades ``pcm`` (a new frame, changed in place) in from the last sample sent when it starts far from it."""
        last = self._last_sample
        if abs(int(pcm[0]) - last) > DECLICK_JUMP:
            head = pcm[:DECLICK_SAMPLES].astype(np.float32)
            pcm[:DECLICK_SAMPLES] = np.rint(last * (1.0 - _FADE_IN) + head * _FADE_IN).astype(np.int16)
        self._last_sample = int(pcm[-1])

    def _take(self, count: int) -> np.ndarray:
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        while filled < count and self._segments:
            segment = self._segments[0]
            if segment.chunks:
                if segment.played == 0 and self.on_segment_start is not None:
                    self.on_segment_start(segment)
                chunk = segment.chunks[0]
                n = min(count - filled, chunk.size)
                out[filled : filled + n] = chunk[:n]
                filled += n
                segment.played += n
                if n == chunk.size:
                    segment.chunks.popleft()
                else:
                    segment.chunks[0] = chunk[n:]
            elif segment.complete:
                self._segments.popleft()
                if self.on_segment_done is not None:
                    self.on_segment_done(segment)
            else:
                break  # the synthesizer is behind: pad with silence, go on next frame
        return out


class OutputResampler:
    """Any TTS rate -> 48 kHz s16 mono, keeping the filter state across one sentence's chunks."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._resampler = AudioResampler(format="s16", layout="mono", rate=OUT_RATE)

    def push(self, pcm: np.ndarray) -> np.ndarray:
        if self._rate == OUT_RATE:
            return pcm.astype(np.int16, copy=False)
        frame = AudioFrame.from_ndarray(pcm.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        if self._rate == OUT_RATE:
            return np.zeros(0, dtype=np.int16)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


class ConnectionTrack(MediaStreamTrack):
    """What one connection's sender reads: the call's ``SpeechTrack``, which outlives the connection. aiortc stops
    the track of a sender whose loop ends (the connection closed or failed); a call that reconnects
    (server/reconnect.py) goes on sending the same track on its next connection, so each gets one of these."""

    kind = "audio"

    def __init__(self, source: SpeechTrack) -> None:
        super().__init__()
        self._source = source

    async def recv(self) -> Packet | AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._source.recv()
