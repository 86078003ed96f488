"""Inbound audio: WebRTC frames (any rate and layout) -> 16 kHz mono float32 windows of 512 samples."""

from __future__ import annotations

import numpy as np
from av import AudioFrame, AudioResampler

VAD_RATE = 16_000
WINDOW = 512  # Silero's window at 16 kHz: 32 ms


class InboundAudio:
    """Resamples with libswresample (``av.AudioResampler``) and cuts exact VAD windows.

    ``push`` returns the complete windows the frame finished; the remainder waits for the next frame.
    """

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, frame: AudioFrame) -> list[np.ndarray]:
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if chunks:
            self._pending = np.concatenate([self._pending, *chunks])
        count = len(self._pending) // WINDOW
        windows = [self._pending[i * WINDOW : (i + 1) * WINDOW] for i in range(count)]
        self._pending = self._pending[count * WINDOW :]
        return windows
