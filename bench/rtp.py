"""RTP packet arrival times for the bench's own client, without changing ``client/``.

``Recording`` times a frame when aiortc's receiver hands it over, after its audio jitter buffer, which holds
4 packets (``JitterBuffer(capacity=16, prefetch=4)``: a frame comes out once 4 later ones are in), so every
``Recording`` time is about 80 ms after the packet reached the client. design/BENCHMARKS.md times reply audio
"at RTP packet arrival"; this hook gives those times too, so both can be printed.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from aiortc import RTCRtpReceiver

from parley.audio import FRAME
from parley.rtc import CallClient

_ARRIVALS: weakref.WeakKeyDictionary[RTCRtpReceiver, list[tuple[int, float]]] = weakref.WeakKeyDictionary()


def install() -> None:
    """Wraps ``RTCRtpReceiver._handle_rtp_packet`` in this process (the bench's client only) to note when each
    packet arrived. Idempotent."""
    if getattr(RTCRtpReceiver, "_bench_arrivals", False):
        return
    original = RTCRtpReceiver._handle_rtp_packet

    async def handle(self: RTCRtpReceiver, packet: Any, arrival_time_ms: int) -> None:
        _ARRIVALS.setdefault(self, []).append((packet.sequence_number, time.monotonic()))
        await original(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = handle  # type: ignore[method-assign]
    RTCRtpReceiver._bench_arrivals = True  # type: ignore[attr-defined]


def frame_arrivals(call: CallClient) -> list[float] | None:
    """The RTP arrival time of each ``Recording`` frame, by index; None when they cannot be matched one to one.

    Frame i of the recording is the i-th packet in sequence order: the server sends one 20 ms Opus packet per
    frame without pause, and on loopback nothing is lost or reordered (checked: no gap in the sequence numbers
    and every recorded chunk is one 960-sample frame).
    """
    receiver = next((r for r in call.pc.getReceivers() if r.track is not None and r.track.kind == "audio"), None)
    packets = _ARRIVALS.get(receiver) if receiver is not None else None
    chunks = call.recording.chunks
    if not packets or any(c.size != FRAME for c in chunks):
        return None
    # Unwrap the 16-bit sequence numbers, keep the first arrival of each.
    first: dict[int, float] = {}
    base, previous = 0, packets[0][0]
    for seq, t in packets:
        if seq < previous and previous - seq > 0x8000:
            base += 0x10000
        previous = seq
        first.setdefault(base + seq, t)
    ordered = sorted(first)
    if len(ordered) < len(chunks) or ordered[len(chunks) - 1] - ordered[0] != len(chunks) - 1:
        return None
    return [first[s] for s in ordered[: len(chunks)]]
