"""CPU per held call, piece by piece: what one call costs every 20 ms frame, measured in isolation.

    .venv/bin/python -m bench.hotpath [--repeat 5]

Each piece runs a few thousand times; the best of ``--repeat`` rounds is kept (the machine is shared, and the
least disturbed round is the closest to the true cost). Figures are microseconds per 20 ms frame of one call
(a 32 ms VAD window is scaled to 20 ms), and what that adds up to per second of call, as a share of one core.
Speech is a 440 Hz tone at -20 dBFS; silence is digital zeros (what a muted microphone sends).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from fractions import Fraction

import numpy as np
from aiortc.codecs import get_decoder, get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import AudioFrame

from server.audio.inbound import WINDOW, InboundAudio
from server.audio.opus import OpusEncoder
from server.audio.outbound import FRAME_SAMPLES, SpeechTrack
from server.audio.vad import SileroModel, SpeechDetector
from server.providers.local import weights

FRAMES_PER_S = 50
WINDOW_PER_FRAME = 20 / 32


def stereo_frame(pcm: np.ndarray, pts: int) -> AudioFrame:
    """What aiortc's Opus decoder hands the server: s16, stereo interleaved, 48 kHz, 960 samples."""
    frame = AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48_000, pts, Fraction(1, 48_000)
    return frame


def best_us(work: Callable[[int], object], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for i in range(count):
            work(i)
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6


def pieces(repeat: int) -> list[tuple[str, float]]:
    tone = (0.1 * 32767 * np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / 48_000)).astype(np.int16)
    zeros = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    speech_frames = [stereo_frame(tone, i * FRAME_SAMPLES) for i in range(64)]
    silent_frames = [stereo_frame(zeros, i * FRAME_SAMPLES) for i in range(64)]
    out: list[tuple[str, float]] = []

    for name, frames in (("speech", speech_frames), ("silence", silent_frames)):
        inbound = InboundAudio()
        cost = best_us(lambda i, inbound=inbound, frames=frames: inbound.push(frames[i % 64]), 2000, repeat)
        out.append((f"inbound resample + windows ({name})", cost))

    model = SileroModel(weights.ensure(weights.SILERO_VAD))
    for name, source in (("speech", tone), ("digital silence", zeros)):
        window = (source[:WINDOW].astype(np.float32) / 32768).copy()
        stream = model.stream()
        cost = best_us(lambda _i, stream=stream, window=window: stream(window), 1000, repeat)
        out.append((f"Silero VAD ({name}), per 20 ms", cost * WINDOW_PER_FRAME))
    detector = SpeechDetector()
    out.append(
        ("VAD state machine, per 20 ms", best_us(lambda i: detector.update(0.01), 5000, repeat) * WINDOW_PER_FRAME)
    )

    track = SpeechTrack()
    segment = track.begin("x")

    def take(_i: int) -> None:
        if not segment.chunks:
            track.write(segment, np.tile(tone, 50))
        track._take(FRAME_SAMPLES)
        AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")

    out.append(("outgoing track: take + frame", best_us(take, 2000, repeat)))

    # aiortc's own per-frame work, for scale (not ours to change here)
    codec = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=96)
    encoder, decoder = get_encoder(codec), get_decoder(codec)
    mono = AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
    mono.sample_rate, mono.time_base = 48_000, Fraction(1, 48_000)

    def encode(i: int) -> None:
        mono.pts = i * FRAME_SAMPLES
        encoder.encode(mono)

    out.append(("aiortc: Opus encode (stereo 96 kb/s; no longer used)", best_us(encode, 1000, repeat)))
    ours = OpusEncoder()
    silent = AudioFrame.from_ndarray(np.zeros((1, FRAME_SAMPLES), np.int16), format="s16", layout="mono")
    silent.sample_rate, silent.time_base = 48_000, Fraction(1, 48_000)
    for name, frame in (("speech", mono), ("silence", silent)):

        def encode_ours(i: int, f: AudioFrame = frame) -> None:
            f.pts = i * FRAME_SAMPLES
            ours.encode(f)

        out.append((f"ours: Opus encode in the track (mono 64 kb/s), {name}", best_us(encode_ours, 1000, repeat)))
    payload = encoder.encode(mono)[0][0]
    from aiortc.jitterbuffer import JitterFrame

    out.append(("aiortc: Opus decode", best_us(lambda i: decoder.decode(JitterFrame(payload, i * 960)), 1000, repeat)))

    loop = asyncio.new_event_loop()

    async def hops(count: int) -> None:
        for _ in range(count):
            await loop.run_in_executor(None, int)

    def hop(_i: int) -> None:
        loop.run_until_complete(hops(1))

    out.append(("aiortc: executor hop per frame (empty work; the sender's is gone)", best_us(hop, 1000, repeat)))
    loop.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = pieces(args.repeat)
    width = max(len(name) for name, _ in rows)
    print(f"{'piece':<{width}}  us/frame  share of a core per call")
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.1f}  {us * FRAMES_PER_S / 1e6:6.2%}")


if __name__ == "__main__":
    main()
