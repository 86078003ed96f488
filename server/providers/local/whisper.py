"""Embedded speech-to-text: multilingual Whisper base on CTranslate2 (faster-whisper), int8 on the CPU."""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from server.providers.base import ProviderError
from server.providers.local import weights

logger = logging.getLogger(__name__)

# Segments Whisper itself marks as probably not speech (it invents "Thank you." on noise).
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
# Whisper's encoder is built for 30 s windows, and encoding the padding is most of the cost of a short turn.
# An encoder window just longer than the utterance (faster-whisper's ``chunk_length``) is 3-5x faster here
# and gave the same words on 34 of 38 clips in 8 languages (bench/stt_window.py); the rest differed by a word.
MIN_WINDOW_S, WINDOW_MARGIN_S, MAX_WINDOW_S = 5, 2, 30


def encoder_window(seconds: float) -> int:
    return int(min(MAX_WINDOW_S, max(MIN_WINDOW_S, math.ceil(seconds) + WINDOW_MARGIN_S)))


class WhisperSTT:
    def __init__(self, threads: int = 2, model_dir: Path | None = None) -> None:
        from faster_whisper import WhisperModel  # heavy import, only when the embedded STT is used

        if model_dir is None:
            model_dir = weights.ensure(weights.WHISPER_BASE[0]).parent
            for extra in weights.WHISPER_BASE[1:]:
                weights.ensure(extra)
        self._model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stt")

    def _transcribe(self, audio: np.ndarray, language: str) -> str:
        # Greedy, no fallback temperatures and a token cap: fallbacks can loop on hallucinations for seconds.
        segments, _info = self._model.transcribe(
            audio,
            language=language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            max_new_tokens=160,
            vad_filter=False,
            chunk_length=encoder_window(audio.size / 16_000),
        )
        kept = [
            s.text.strip() for s in segments if not (s.no_speech_prob > NO_SPEECH_PROB and s.avg_logprob < LOW_LOGPROB)
        ]
        return " ".join(t for t in kept if t).strip()

    async def transcribe(self, audio: np.ndarray, language: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._transcribe, audio, language)
        except Exception as exc:
            logger.exception("transcription failed")
            raise ProviderError("speech recognition failed") from exc
