"""Embedded speech: Piper (neural, en_US joe) for English, espeak-ng for the languages without a neural voice."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import threading
import wave
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server.languages import LANGUAGES
from server.providers.base import AudioChunk, ProviderError, VoiceStyle
from server.providers.local import weights
from server.providers.local.threads import stream_from_thread

logger = logging.getLogger(__name__)

# Voices per language come from the language table (server/languages.py). Joe is the one Piper voice installed
# (weights.PIPER_JOE): a language the table gives it speaks with Piper, every other one with espeak-ng.
PIPER_VOICE = "en_US-joe-medium"
ESPEAK_VOICES = {code: language.espeak for code, language in LANGUAGES.items()}
PIPER_LANGUAGES = {code for code, language in LANGUAGES.items() if language.piper == PIPER_VOICE}
WORDS_PER_MINUTE = 165  # espeak-ng's speed at rate 1.0 (its default, 175, is hurried for a learner)


def piper_session(onnx: Path) -> ort.InferenceSession:
    """Piper's ONNX session without memory patterns. onnxruntime plans (and keeps) a memory pattern for every
    new input shape, and every sentence has its own number of phonemes: with patterns, Piper's memory rose by
    184 MB over 40 sentences and was still rising (210 MB after 120); without, it stayed at 103-104 MB from the
    40th sentence to the 120th, and synthesis was no slower (268 vs 380 ms a sentence, on a busy machine)."""
    options = ort.SessionOptions()
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])


class PiperTTS:
    """Piper streams one chunk per sentence; the caller sends it a sentence at a time."""

    def __init__(self, model: Path | None = None) -> None:
        from piper import PiperVoice  # heavy import, only when the embedded TTS is used

        onnx = model or weights.ensure(weights.PIPER_JOE[0])
        config = weights.ensure(weights.PIPER_JOE[1]) if model is None else Path(f"{model}.json")
        self._voice = PiperVoice.load(onnx, config_path=config, use_cuda=False)
        self._voice.session = piper_session(onnx)
        self.rate = self._voice.config.sample_rate
        self._length_scale = self._voice.config.length_scale
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tts")

    def _chunks(self, text: str, rate: float, stop: threading.Event) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        # Piper's length_scale stretches phoneme durations: slower speech for a slower rate.
        config = SynthesisConfig(length_scale=self._length_scale / max(rate, 0.5))
        for chunk in self._voice.synthesize(text, config):
            if stop.is_set():
                return
            yield AudioChunk(chunk.audio_int16_array.reshape(-1), chunk.sample_rate)

    async def synthesize(self, text: str, style: VoiceStyle) -> AsyncIterator[AudioChunk]:
        async for chunk in stream_from_thread(self._executor, lambda stop: self._chunks(text, style.rate, stop)):
            yield chunk


class EspeakTTS:
    """espeak-ng in a subprocess (about 10 ms a sentence): every language, robotic but clear."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("espeak-ng")
        if found is None:
            raise ProviderError("espeak-ng is not installed (apt-get install espeak-ng, or run scripts/setup.sh)")
        self._binary = found
        # espeak-ng's Japanese voice reads kana but says "Chinese letter" for every kanji: Japanese text is
        # turned into hiragana first (pykakasi's dictionary, offline; ~0.4 s to load, here, off the loop).
        import pykakasi

        self._kakasi = pykakasi.kakasi()

    def speakable(self, text: str, language: str) -> str:
        if language != "ja":
            return text
        return "".join(part["hira"] for part in self._kakasi.convert(text))

    @staticmethod
    def voice(style: VoiceStyle) -> str:
        voice = style.voice if style.voice.startswith("espeak:") else ""
        return voice.removeprefix("espeak:") or ESPEAK_VOICES.get(style.language, "en-us")

    async def synthesize(self, text: str, style: VoiceStyle) -> AsyncIterator[AudioChunk]:
        words_per_minute = str(round(WORDS_PER_MINUTE * max(style.rate, 0.5)))
        proc = await asyncio.create_subprocess_exec(
            self._binary, "-v", self.voice(style), "-s", words_per_minute, "--stdout", "--",
            self.speakable(text, style.language),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise ProviderError(f"espeak-ng failed: {err.decode(errors='replace').strip()[:200]}")
        with wave.open(io.BytesIO(out)) as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        yield AudioChunk(pcm, rate)


class LocalTTS:
    """Routes each sentence to the best offline voice for the session's language."""

    def __init__(self, piper: PiperTTS | None, espeak: EspeakTTS) -> None:
        self._piper = piper
        self._espeak = espeak

    def _uses_piper(self, style: VoiceStyle) -> bool:
        return self._piper is not None and style.language in PIPER_LANGUAGES and not style.voice.startswith("espeak:")

    def voice_for(self, style: VoiceStyle) -> str:
        """The voice that says text in this style: "piper:<voice>" or "espeak:<voice>"."""
        return f"piper:{PIPER_VOICE}" if self._uses_piper(style) else f"espeak:{self._espeak.voice(style)}"

    async def synthesize(self, text: str, style: VoiceStyle) -> AsyncIterator[AudioChunk]:
        engine = self._piper if self._uses_piper(style) else self._espeak
        async for chunk in engine.synthesize(text, style):
            yield chunk
