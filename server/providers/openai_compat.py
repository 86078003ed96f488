"""OpenAI and any OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama, speech servers), one provider
per stage, through the official SDK's ``AsyncOpenAI``.

Faults: each stage has its own timeout; the SDK retries 429, 5xx and connection errors with exponential
backoff (``max_retries``) while no byte of the answer has arrived, and never once a stream has started, so
audio already played is never repeated. Any failure becomes a ``ProviderError`` whose message is safe to
show: it names the stage and the HTTP status, never the key.
"""

from __future__ import annotations

import io
import logging
import wave
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass

import httpx
import numpy as np
import openai
from openai import AsyncOpenAI

from server.providers.base import AudioChunk, ChatMessage, ProviderError, VoiceStyle

logger = logging.getLogger(__name__)

OPENAI_PCM_RATE = 24_000  # response_format="pcm": 16-bit mono little-endian at 24 kHz
PCM_CHUNK_BYTES = 4_800  # 100 ms


@dataclass(frozen=True)
class Endpoint:
    """Where a stage goes: ``base_url`` None means the SDK's default (``OPENAI_BASE_URL`` or OpenAI)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 2

    def client(self) -> AsyncOpenAI:
        # Only this endpoint's own key is sent (server/providers/registry.py chooses it): never OPENAI_API_KEY from
        # the environment on the SDK's initiative. A compatible server often wants no key; the SDK insists on one,
        # so a placeholder stands in. With no base URL (OpenAI's own) and no key, the SDK says a key is needed.
        key = self.api_key or ("unused" if self.base_url else None)
        return AsyncOpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout_s, max_retries=self.max_retries)


_ERROR_WORDS: tuple[tuple[type[Exception], str], ...] = (
    (openai.AuthenticationError, "the endpoint refused the API key"),
    (openai.NotFoundError, "the endpoint does not know this model"),
    (openai.RateLimitError, "the endpoint is rate limiting us; try again shortly"),
    (openai.APITimeoutError, "the endpoint took too long to answer"),  # before its parent, APIConnectionError
    (openai.APIConnectionError, "the endpoint cannot be reached"),
)


def describe_error(stage: str, exc: Exception) -> str:
    """A message for the person and the logs; the SDK's own messages can echo part of the key."""
    for kind, words in _ERROR_WORDS:
        if isinstance(exc, kind):
            return f"{stage}: {words}"
    if isinstance(exc, openai.APIStatusError):
        return f"{stage}: the endpoint failed (HTTP {exc.status_code})"
    return f"{stage}: the endpoint failed"


def wav_bytes(audio: np.ndarray, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


class OpenAISTT:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client = endpoint.client()

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        # With other languages possible, the server detects the language itself (no hint).
        hint = {} if languages else {"language": language}
        try:
            result = await self._client.audio.transcriptions.create(
                model=self.endpoint.model, file=("speech.wav", wav_bytes(audio), "audio/wav"), **hint
            )
        except openai.OpenAIError as exc:
            logger.warning("transcription failed: %s", type(exc).__name__)
            raise ProviderError(describe_error("speech recognition", exc), "stt") from exc
        return (result.text or "").strip()


class OpenAIChat:
    reads_ahead = False  # the server keeps its own caches

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client = endpoint.client()

    async def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        try:
            stream = await self._client.chat.completions.create(
                model=self.endpoint.model,
                messages=list(messages),  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
                stream=True,
            )
            async with stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except openai.OpenAIError as exc:
            logger.warning("chat failed: %s", type(exc).__name__)
            raise ProviderError(describe_error("the language model", exc), "llm") from exc
        except httpx.TransportError as exc:  # the SDK does not wrap errors while a stream is read: a replica that
            # died mid-reply (docs/deployment.md, "The inference tier"); the turn ends with an apology
            logger.warning("chat stream broke: %s", type(exc).__name__)
            raise ProviderError("the language model: the reply was cut off", "llm") from exc

    async def warm(self, messages: Sequence[ChatMessage], *, opening: bool = False) -> None:
        return None  # a remote server keeps its own caches

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        return None  # nothing to fill: reads_ahead is False

    def forget(self, messages: Sequence[ChatMessage]) -> None:
        return None  # nothing of the call is kept here


class OpenAITTS:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client = endpoint.client()

    async def synthesize(self, text: str, style: VoiceStyle) -> AsyncIterator[AudioChunk]:
        extra = {"instructions": style.instructions} if style.instructions else {}
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self.endpoint.model, voice=style.voice or "coral", input=text, response_format="pcm", **extra
            ) as response:
                leftover = b""
                async for data in response.iter_bytes(PCM_CHUNK_BYTES):
                    data = leftover + data
                    usable = len(data) - len(data) % 2  # a chunk can end inside a sample
                    leftover = data[usable:]
                    if usable:
                        yield AudioChunk(np.frombuffer(data[:usable], dtype="<i2"), OPENAI_PCM_RATE)
        except openai.OpenAIError as exc:
            logger.warning("speech failed: %s", type(exc).__name__)
            raise ProviderError(describe_error("speech synthesis", exc), "tts") from exc
        except Exception as exc:  # httpx errors while the stream is read (the server cut it off)
            logger.warning("speech stream broke: %s", type(exc).__name__)
            raise ProviderError("speech synthesis: the audio stream was cut off", "tts") from exc


async def check(endpoint: Endpoint, stage: str) -> None:
    """Checks once, at start-up, that the endpoint takes the key and knows the model."""
    client = endpoint.client()
    try:
        models = await client.models.list()
        names = {m.id async for m in models}
    except openai.NotFoundError:
        return  # some compatible servers have no model list: the first turn will tell
    except openai.OpenAIError as exc:
        raise ProviderError(describe_error(stage, exc)) from exc
    finally:
        await client.close()
    if names and endpoint.model not in names:
        raise ProviderError(f"{stage}: the endpoint has no model {endpoint.model!r}")
