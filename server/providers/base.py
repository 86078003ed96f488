"""One small Protocol per stage, so each can be swapped (embedded, OpenAI-compatible) or faked in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

import numpy as np


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class AudioChunk:
    """Synthesized speech: int16 mono samples at ``rate`` Hz."""

    pcm: np.ndarray
    rate: int


@dataclass(frozen=True)
class VoiceStyle:
    """What the TTS should sound like: a voice name (engine-specific), style directions, language."""

    voice: str = ""
    instructions: str = ""
    language: str = "en"
    rate: float = 1.0  # speaking speed for engines that take one (1.0 normal, below 1 slower)


class ProviderError(RuntimeError):
    """A stage failed; the message is safe to show the person (no keys, no internals)."""

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage  # "stt" | "llm" | "tts" when known


class SpeechToText(Protocol):
    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        """``audio``: 16 kHz mono float32 in [-1, 1]. Returns the text ('' when nothing was said).

        ``languages``: others the person may be speaking (chat follows the person), which the engine may
        recognize instead of ``language``; empty: ``language`` only."""
        ...


class ChatModel(Protocol):
    reads_ahead: bool  # True when ``prefill`` does something (a local KV cache)

    def stream(self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int) -> AsyncIterator[str]:
        """Yields the reply's text deltas as they are generated; cancelling the consumer stops generation."""
        ...

    async def warm(self, messages: Sequence[ChatMessage], *, opening: bool = False) -> None:
        """Prepares for a conversation that starts with ``messages`` (e.g. evaluates the prompt ahead). An
        ``opening`` is how every call in one mode and language starts: worth keeping ready for the next one."""
        ...

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """``messages`` end with the words the person has said so far, still talking: a model with a local
        cache reads them now; the turn's prompt will start with them. Cancelling stops the reading."""
        ...


class TextToSpeech(Protocol):
    def synthesize(self, text: str, style: VoiceStyle) -> AsyncIterator[AudioChunk]:
        """Yields audio chunks as soon as they are ready."""
        ...


@dataclass
class Providers:
    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech

    def describe(self) -> dict[str, str]:
        return {stage: type(getattr(self, stage)).__name__ for stage in ("stt", "llm", "tts")}
