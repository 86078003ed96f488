"""Embedded speech-to-text: multilingual Whisper base on CTranslate2 (via faster-whisper), int8 on the CPU.

Whisper's encoder is built for 30 s windows and faster-whisper always pads to 30 s, so encoding silence is
most of the cost of a short turn (1.5 s here for a 2 s question). CTranslate2 accepts a shorter window, so
the features are cut to the utterance plus 2 s of padding (at least 5 s): about 4x faster on this machine,
and on 19 clips in 8 languages the words changed about as often for the better as for the worse
(``python -m bench.stt_window``). Short windows can make Whisper repeat its last sentence; repeats are cut.

The window's length is rounded up to a whole step (``WINDOW_STEP_FRAMES``). CTranslate2 runs the encoder's
convolutions on oneDNN, which builds (JIT-compiles) a primitive for every new input shape and keeps it in a
process-wide cache of up to 1,024 entries: with a window cut to each utterance's exact length, nearly every
turn and every partial transcript was a new shape, and the server grew by about 0.6 MB per transcription
(``python -m bench.soak``; flat with ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0``). Rounded, there are at most 51
window lengths between 5 and 30 s, so the cache stops growing after a few calls and its primitives are reused.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from server.languages import LANGUAGES
from server.providers.base import ProviderError
from server.providers.local import weights
from server.scripts import CJK

logger = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # Whisper's mel frames
MIN_WINDOW_S, WINDOW_MARGIN_S, MAX_WINDOW_S = 5, 2, 30
WINDOW_STEP_FRAMES = 50  # windows come in 0.5 s steps: a bounded set of shapes (see above)
# Whisper's own "no speech" verdict, with a low score, means it is inventing words (e.g. "Thank you." on noise).
NO_SPEECH_PROB, LOW_SCORE = 0.6, -1.0
MAX_TOKENS = 160
DETECT_MIN_PROBABILITY = 0.8  # below it, a short utterance's language guess is often wrong


def encoder_frames(feature_frames: int) -> int:
    """Mel frames the encoder reads: the utterance plus a margin, rounded up to a 0.5 s step, between 5 and 30 s."""
    margin = WINDOW_MARGIN_S * FRAMES_PER_SECOND
    lowest, highest = MIN_WINDOW_S * FRAMES_PER_SECOND, MAX_WINDOW_S * FRAMES_PER_SECOND
    rounded = -(-(feature_frames + margin) // WINDOW_STEP_FRAMES) * WINDOW_STEP_FRAMES
    return min(highest, max(lowest, rounded))


def _key(sentence: str) -> str:
    return re.sub(r"\W+", "", sentence.lower())


# A word said four times running, or a CJK run of 1-8 characters four times without spaces, is Whisper stuck in
# a loop (seen: "牛奶 牛奶 牛奶 ..." up to the token cap), not speech: three ("no no no") can be.
_WORD_LOOP = re.compile(r"(?<!\S)(\S+)(?:\s+\1){3,}(?!\S)")
_CJK_LOOP = re.compile(f"([{CJK}]{{1,8}}?)\\1{{3,}}")


# Whisper's language codes back to the table's (the same ISO codes for the 13 languages today).
_FROM_WHISPER = {language.whisper: code for code, language in LANGUAGES.items()}


def drop_repeats(text: str) -> str:
    """Removes sentences that repeat the one before them, in full or as a cut-off start, and word loops."""
    text = _CJK_LOOP.sub(r"\1", _WORD_LOOP.sub(r"\1", text))
    kept: list[str] = []
    for sentence in re.split(r"(?<=[.!?。！？])\s*", text.strip()):
        key = _key(sentence)
        if key and not (kept and _key(kept[-1]).startswith(key)):
            kept.append(sentence)
    return " ".join(kept)


def max_tokens(seconds: float, language: str) -> int:
    """A cap on tokens for this much speech, so a repetition loop ends early (CJK needs more per second)."""
    per_second = 16 if language in LANGUAGES and LANGUAGES[language].cjk else 8
    return min(MAX_TOKENS, 12 + int(per_second * seconds))


class WhisperSTT:
    def __init__(self, threads: int = 2, model_dir: Path | None = None) -> None:
        from faster_whisper import WhisperModel  # heavy import, only when the embedded STT is used

        if model_dir is None:
            model_dir = weights.ensure(weights.WHISPER_BASE[0]).parent
            for extra in weights.WHISPER_BASE[1:]:
                weights.ensure(extra)
        self._whisper = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stt")

    def _prompt(self, language: str) -> list[int]:
        from faster_whisper.tokenizer import Tokenizer

        code = LANGUAGES[language].whisper if language in LANGUAGES else language
        tokenizer = Tokenizer(self._whisper.hf_tokenizer, True, task="transcribe", language=code)
        return [*tokenizer.sot_sequence, tokenizer.no_timestamps]

    def transcribe_sync(
        self, audio: np.ndarray, language: str, window_frames: int | None = None, languages: Collection[str] = ()
    ) -> str:
        import ctranslate2

        audio = audio[-MAX_WINDOW_S * 16_000 :]  # the end of an utterance matters most
        frames = window_frames or encoder_frames(audio.size * FRAMES_PER_SECOND // 16_000)
        # Pad the waveform, not the features: the encoder must see real silence after the speech (zeros in
        # the log-mel domain are not silence, and make Whisper repeat itself).
        padded = np.zeros(frames * 16_000 // FRAMES_PER_SECOND, dtype=np.float32)
        padded[: audio.size] = audio
        window = np.ascontiguousarray(self._whisper.feature_extractor(padded)[:, :frames])
        encoded = self._whisper.model.encode(ctranslate2.StorageView.from_array(window[None]), to_cpu=False)
        if languages:
            language = self._detect(encoded, language, languages)
        # Greedy, no fallback temperatures, a token cap: fallbacks can loop on hallucinations for seconds.
        result = self._whisper.model.generate(
            encoded, [self._prompt(language)], beam_size=1, max_length=max_tokens(audio.size / 16_000, language),
            return_scores=True, return_no_speech_prob=True,
        )[0]  # fmt: skip
        if result.no_speech_prob > NO_SPEECH_PROB and result.scores[0] < LOW_SCORE:
            return ""
        text = self._whisper.hf_tokenizer.decode(result.sequences_ids[0])
        return drop_repeats(text)

    def _detect(self, encoded: Any, language: str, languages: Collection[str]) -> str:
        """The language Whisper hears, when it is sure and one of ``languages``; else ``language``.

        One decoder step on the encoder output the transcription uses anyway: about 50 ms here (not the 0.25 s
        of faster-whisper's own detection, which encodes a second, 30 s window). On 1.5 s of real speech it
        was right 34 times in 44, and every wrong guess had a probability under 0.75."""
        token, probability = self._whisper.model.detect_language(encoded)[0][0]
        heard = _FROM_WHISPER.get(token.strip("<|>"), token.strip("<|>"))
        if heard != language and heard in languages and probability >= DETECT_MIN_PROBABILITY:
            logger.debug("heard %s (p=%.2f), not %s", heard, probability, language)
            return heard
        return language

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self.transcribe_sync, audio, language, None, languages)
        except Exception as exc:
            logger.exception("transcription failed")
            raise ProviderError("speech recognition failed") from exc
