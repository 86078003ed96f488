"""Inbound audio: WebRTC frames (any rate and layout) -> 16 kHz mono float32 windows of 512 samples."""

from __future__ import annotations

import logging

import numpy as np
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from av import AudioFrame, AudioResampler

logger = logging.getLogger(__name__)

VAD_RATE = 16_000
WINDOW = 512  # Silero's window at 16 kHz: 32 ms


class InboundAudio:
    """Resamples with libswresample (``av.AudioResampler``) and cuts exact VAD windows.

    ``push`` returns the complete windows the frame finished; the remainder waits for the next frame.

    The frames' shape can change mid-call: a peer that negotiated Opus, PCMU and G722 may switch codec at any
    packet, and aiortc then decodes the new payload type with a new decoder (48 kHz stereo becomes 8 kHz or
    16 kHz mono). libswresample's filter graph is built for the first frame's shape and refuses any other
    ("Frame does not match AudioResampler setup"), so a new one is built for the new shape, after the old one
    has given up what it held.
    """

    def __init__(self) -> None:
        self._resampler: AudioResampler | None = AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        self._shape: tuple[str, str, int] | None = None  # (format, layout, rate) the resampler was built for
        self._pending = np.zeros(0, dtype=np.float32)

    def close(self) -> None:
        """Lets go of the resampler (a filter graph with threads of its own) as the call ends."""
        self._resampler = None
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, frame: AudioFrame) -> list[np.ndarray]:
        if self._resampler is None:
            return []
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        flushed: list[AudioFrame] = []
        if self._shape is not None and shape != self._shape:
            logger.info("inbound audio changed from %s to %s: resampling it afresh", self._shape, shape)
            flushed = self._resampler.resample(None)
            self._resampler = AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        self._shape = shape
        chunks = [f.to_ndarray().reshape(-1) for f in [*flushed, *self._resampler.resample(frame)]]
        if chunks:
            self._pending = np.concatenate([self._pending, *chunks])
        count = len(self._pending) // WINDOW
        windows = [self._pending[i * WINDOW : (i + 1) * WINDOW] for i in range(count)]
        self._pending = self._pending[count * WINDOW :]
        return windows


def shorten_jitter_buffer(pc: RTCPeerConnection) -> bool:
    """Hands each inbound audio packet to the decoder as soon as the next one arrives (20 ms), not 4 later.

    aiortc's audio receiver builds ``JitterBuffer(capacity=16, prefetch=4)``: 80 ms before the VAD hears
    anything, all of it added to every barge-in. Its buffer only reorders (it has no playout clock), so a
    prefetch of 1 keeps the reordering and loses only the wait. aiortc offers no setting for it: this replaces
    the receiver's private buffer, before any packet arrives. Returns False, and changes nothing, where an
    aiortc version has no such attribute (a test checks that ours has).
    """
    changed = False
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind != "audio" or not isinstance(getattr(receiver, _BUFFER, None), JitterBuffer):
            continue
        setattr(receiver, _BUFFER, JitterBuffer(capacity=16, prefetch=1))
        changed = True
    if not changed:
        logger.warning("aiortc's audio jitter buffer was not found: inbound audio keeps its 80 ms delay")
    return changed


_BUFFER = "_RTCRtpReceiver__jitter_buffer"
