"""Scripted stand-ins for the three model stages, for tests of the logic around them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence

import numpy as np

from server.providers.base import AudioChunk, ChatMessage, ProviderError, Providers, VoiceStyle

TONE_RATE = 16_000


class FakeSTT:
    """Returns the scripted transcripts in order (the last one repeats)."""

    def __init__(self, *texts: str, delay: float = 0.05) -> None:
        self.texts = list(texts) or ["hello there"]
        self.delay = delay
        self.calls: list[tuple[float, str]] = []  # (seconds of audio, language)
        self.languages: list[tuple[str, ...]] = []  # the other languages it could have heard, per call

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        self.calls.append((audio.size / 16_000, language))
        self.languages.append(tuple(languages))
        await asyncio.sleep(self.delay)
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]


class StatelessLLM:
    """The hooks of a chat model that keeps nothing between requests (no prompt cache to warm, fill or drop):
    the base of test models that only script ``stream``."""

    reads_ahead = False

    async def warm(self, messages: Sequence[ChatMessage], *, opening: bool = False) -> None:
        return None

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        return None

    def forget(self, messages: Sequence[ChatMessage]) -> None:
        return None


class FakeLLM:
    """Streams the scripted replies word by word; records every message list it was given."""

    reads_ahead = False  # the tests of listening ahead switch it on

    def __init__(self, *replies: str, token_delay: float = 0.01, fail_times: int = 0) -> None:
        self.replies = list(replies) or ["Sure. That sounds good."]
        self.token_delay = token_delay
        self.fail_times = fail_times
        self.requests: list[list[ChatMessage]] = []
        self.prefills: list[list[ChatMessage]] = []
        self.forgotten: list[list[ChatMessage]] = []  # conversations of ended calls

    async def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        self.requests.append(list(messages))
        if self.fail_times:
            self.fail_times -= 1
            raise ProviderError("the language model failed")
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        for word in reply.split(" "):
            await asyncio.sleep(self.token_delay)
            yield word + " "

    async def warm(self, messages: Sequence[ChatMessage], *, opening: bool = False) -> None:
        return None

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        self.prefills.append(list(messages))

    def forget(self, messages: Sequence[ChatMessage]) -> None:
        self.forgotten.append(list(messages))


class FakeTTS:
    """A 440 Hz tone, ``seconds_per_word`` long per word, in 100 ms chunks (loud: about -9 dBFS)."""

    def __init__(self, seconds_per_word: float = 0.1, delay: float = 0.01) -> None:
        self.seconds_per_word = seconds_per_word
        self.delay = delay
        self.texts: list[str] = []

    async def synthesize(self, text: str, style: VoiceStyle) -> AsyncIterator[AudioChunk]:
        self.texts.append(text)
        samples = int(len(text.split()) * self.seconds_per_word * TONE_RATE)
        t = np.arange(samples) / TONE_RATE
        tone = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        for i in range(0, samples, TONE_RATE // 10):
            await asyncio.sleep(self.delay)
            yield AudioChunk(tone[i : i + TONE_RATE // 10], TONE_RATE)


def fake_providers(stt: FakeSTT | None = None, llm: FakeLLM | None = None, tts: FakeTTS | None = None) -> Providers:
    return Providers(stt=stt or FakeSTT(), llm=llm or FakeLLM(), tts=tts or FakeTTS())
