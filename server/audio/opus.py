"""Opus for the outgoing track, encoded by the track itself, on the loop.

aiortc's sender encodes every 20 ms frame as stereo 96 kb/s, behind a mono-to-stereo resampler, in its default
thread pool: one thread hand-off per frame per call. ``python -m bench.hotpath`` here: about 0.32 ms of CPU per
frame to encode, plus ~0.2 ms for the hand-off. Speech is mono, so the track encodes mono at 64 kb/s (Opus's
CELT mode, as at 96 kb/s; the SILK and hybrid modes of lower rates cost more): ~0.17 ms per speech frame,
~0.08 ms per silent one, no hand-off. aiortc gets a ready packet, which it only wraps in RTP. Opus receivers
decode mono packets on a stereo stream (RFC 7587), browsers included.
"""

from __future__ import annotations

import logging

from av import AudioFrame, CodecContext, Packet

logger = logging.getLogger(__name__)

BIT_RATE = 64_000


class OpusEncoder:
    """One per track: Opus keeps state from frame to frame."""

    def __init__(self, rate: int = 48_000) -> None:
        codec = CodecContext.create("libopus", "w")
        codec.bit_rate = BIT_RATE
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = rate
        codec.options = {"application": "voip"}
        self._codec = codec

    def encode(self, frame: AudioFrame) -> Packet | AudioFrame:
        """The frame as one Opus packet with the frame's pts (libopus returns exactly one per 20 ms frame; the
        packet's own pts is shifted by the encoder's look-ahead, which the receiver must not see)."""
        packets = self._codec.encode(frame)
        if len(packets) != 1:  # not seen; aiortc can still encode the frame itself
            logger.warning("the Opus encoder returned %d packets for one frame", len(packets))
            return frame
        packet = packets[0]
        packet.pts = frame.pts
        packet.time_base = frame.time_base
        return packet
