"""Has the person finished their turn? Smart Turn v3 (an ONNX classifier trained on 23 languages) listens to the
last 8 s of the turn so far, intonation included, and says how likely it is complete: a falling "... and that's
it." is, a level "... and then I" is not, whatever the silence after it.

It runs at each pause (server/dialogue/turn_end.py decides what to do with the answer), on a thread of its own:
the pause is also when Whisper starts on the speculative transcript, and the verdict must not queue behind it.
The features are Whisper's log-mel spectrogram, computed by faster-whisper's own extractor (the speech
recogniser's dependency), on audio normalised to zero mean and unit variance as the model was trained.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server.audio.inbound import VAD_RATE

logger = logging.getLogger(__name__)

SECONDS = 8  # the model reads the last 8 s of the turn, zero-padded in front when shorter
SAMPLES = SECONDS * VAD_RATE


class TurnModel:
    """Shared by every call: the ONNX session is thread-safe, and one thread runs every verdict in turn (each
    takes tens of milliseconds; a call asks once per pause)."""

    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        # Imported here: faster_whisper loads CTranslate2, which the fast tests and remote-only servers never need.
        from faster_whisper.feature_extractor import FeatureExtractor

        self._features = FeatureExtractor(feature_size=80, sampling_rate=VAD_RATE, chunk_length=SECONDS)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn-model")

    def complete_probability(self, audio: np.ndarray) -> float:
        """How likely the turn in ``audio`` (float32, 16 kHz, ending at the pause) is complete, 0 to 1. Blocking."""
        audio = np.asarray(audio, dtype=np.float32)[-SAMPLES:]
        if len(audio) < SAMPLES:
            audio = np.concatenate([np.zeros(SAMPLES - len(audio), dtype=np.float32), audio])
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        features = self._features(audio, padding=0)[np.newaxis].astype(np.float32)
        (probability,) = self._session.run(None, {self._input: features})
        return float(np.asarray(probability).reshape(-1)[0])

    async def complete(self, audio: np.ndarray) -> float:
        """``complete_probability`` on the model's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self.complete_probability, audio)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
