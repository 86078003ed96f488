"""Builds the three stages from the settings: embedded models, OpenAI-compatible endpoints, or a mix."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from server.config import STAGES, Settings
from server.providers.base import ChatModel, Providers, SpeechToText, TextToSpeech
from server.providers.openai_compat import Endpoint, OpenAIChat, OpenAISTT, OpenAITTS, check

logger = logging.getLogger(__name__)

REMOTE_DEFAULT_MODELS = {"stt": "whisper-1", "llm": "gpt-4o-mini", "tts": "gpt-4o-mini-tts"}
OPENAI_HOST = "api.openai.com"
STAGE_NAMES = {"stt": "speech recognition", "llm": "the language model", "tts": "speech synthesis"}


def endpoint(settings: Settings, stage: str, env: Mapping[str, str] | None = None) -> Endpoint:
    env = os.environ if env is None else env
    return Endpoint(
        model=getattr(settings, f"{stage}_model") or REMOTE_DEFAULT_MODELS[stage],
        base_url=getattr(settings, f"{stage}_base_url") or env.get("OPENAI_BASE_URL") or None,
        api_key=api_key(settings, stage, env),
        timeout_s=getattr(settings, f"{stage}_timeout_s"),
        max_retries=settings.max_retries,
    )


def api_key(settings: Settings, stage: str, env: Mapping[str, str]) -> str | None:
    """The key a stage's endpoint gets: its own (``PARLEY_<STAGE>_API_KEY``), else ``OPENAI_API_KEY`` where that key
    belongs: OpenAI's own endpoint, the OpenAI SDK's default (the stage has no base URL of its own, so it goes to
    ``OPENAI_BASE_URL`` or OpenAI, as the SDK pairs them), or anywhere when the operator says so
    (``PARLEY_SHARE_OPENAI_KEY``). A third party's server named in ``PARLEY_<STAGE>_BASE_URL`` never sees it."""
    own = getattr(settings, f"{stage}_api_key")
    if own:
        return own
    shared = env.get("OPENAI_API_KEY") or None
    base_url = getattr(settings, f"{stage}_base_url")
    if shared and (settings.share_openai_key or not base_url or is_openai(base_url)):
        return shared
    return None


def is_openai(url: str) -> bool:
    """OpenAI's own API, over TLS (a look-alike such as api.openai.com.example.net is not)."""
    try:
        parts = urlsplit(url)
        return parts.scheme == "https" and parts.hostname == OPENAI_HOST and parts.port in (None, 443)
    except ValueError:  # a port that is not a number
        return False


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
