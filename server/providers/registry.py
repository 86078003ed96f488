"""Builds the three stages from the settings: embedded models, OpenAI-compatible endpoints, or a mix."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from server.config import STAGES, Settings
from server.providers.base import ChatModel, Providers, SpeechToText, TextToSpeech
from server.providers.openai_compat import Endpoint, OpenAIChat, OpenAISTT, OpenAITTS, check

logger = logging.getLogger(__name__)

REMOTE_DEFAULT_MODELS = {"stt": "whisper-1", "llm": "gpt-4o-mini", "tts": "gpt-4o-mini-tts"}
STAGE_NAMES = {"stt": "speech recognition", "llm": "the language model", "tts": "speech synthesis"}


def endpoint(settings: Settings, stage: str) -> Endpoint:
    return Endpoint(
        model=getattr(settings, f"{stage}_model") or REMOTE_DEFAULT_MODELS[stage],
        base_url=getattr(settings, f"{stage}_base_url") or os.environ.get("OPENAI_BASE_URL") or None,
        timeout_s=getattr(settings, f"{stage}_timeout_s"),
        max_retries=settings.max_retries,
    )


def remote_stages(settings: Settings) -> list[str]:
    return [stage for stage in STAGES if settings.provider(stage) == "openai"]


async def verify(settings: Settings) -> None:
    """Start-up check of every remote stage (key accepted, model known); raises ProviderError."""
    for stage in remote_stages(settings):
        await check(endpoint(settings, stage), STAGE_NAMES[stage])


def build(settings: Settings) -> Providers:
    """Loads what each stage needs (blocking for the embedded models: call it from a worker thread)."""
    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech
    if settings.provider("stt") == "openai":
        stt = OpenAISTT(endpoint(settings, "stt"))
    else:
        from server.providers.local.whisper import WhisperSTT

        stt = WhisperSTT(threads=settings.threads)
    if settings.provider("llm") == "openai":
        llm = OpenAIChat(endpoint(settings, "llm"))
    else:
        from server.providers.local.llama import LlamaChat

        llm = LlamaChat(threads=settings.threads, context=settings.llm_context)
    if settings.provider("tts") == "openai":
        tts = OpenAITTS(endpoint(settings, "tts"))
    else:
        from server.providers.local.tts import EspeakTTS, LocalTTS, PiperTTS

        tts = LocalTTS(PiperTTS(), EspeakTTS())
    providers = Providers(stt=stt, llm=llm, tts=tts)
    logger.info("providers: %s", providers.describe())
    return providers


def load_local(settings: Settings) -> Providers:
    """The embedded STT, LLM and TTS whatever the settings say (the tests' real-model fixture)."""
    return build(replace(settings, stt="local", llm="local", tts="local"))
