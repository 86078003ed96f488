"""Embedded chat model: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) on llama.cpp, KV cache kept warm.

One ``Llama`` serves every call from a single worker thread. llama-cpp-python reuses the longest prefix of
the previous prompt that is still in its KV cache, so a conversation whose history is only ever appended to
pays for its new tokens only (the system prompt is evaluated once, ahead of the first turn).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from server.providers.base import ChatMessage, ProviderError
from server.providers.local import weights
from server.providers.local.threads import stream_from_thread

logger = logging.getLogger(__name__)


class LlamaChat:
    def __init__(self, threads: int = 2, context: int = 4096, model_path: Path | None = None) -> None:
        from llama_cpp import Llama  # heavy import, only when the embedded LLM is used

        path = model_path or weights.ensure(weights.QWEN_CODER_1_5B)
        # use_mmap=False: the weights are read once into memory, so page faults never stall a turn.
        self._llm = Llama(
            model_path=str(path),
            n_ctx=context,
            n_threads=threads,
            n_threads_batch=threads,
            use_mmap=False,
            verbose=False,
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llm")

    def _generate(
        self, messages: Sequence[ChatMessage], temperature: float, max_tokens: int, stop: threading.Event
    ) -> Iterator[str]:
        started, cached = time.monotonic(), self._llm.n_tokens
        chunks: Any = self._llm.create_chat_completion(
            messages=list(messages),  # type: ignore[arg-type]
            temperature=temperature,
            max_tokens=max_tokens,
            stream=True,
        )
        first = True
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                delta = chunk["choices"][0]["delta"].get("content")
                if delta:
                    if first:
                        logger.debug(
                            "first token after %.0f ms (%d tokens were cached, %d in context now)",
                            (time.monotonic() - started) * 1000, cached, self._llm.n_tokens,
                        )  # fmt: skip
                        first = False
                    yield delta
        finally:
            chunks.close()

    async def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        try:
            async for delta in stream_from_thread(
                self._executor, lambda stop: self._generate(messages, temperature, max_tokens, stop)
            ):
                yield delta
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            logger.exception("generation failed")
            raise ProviderError("the language model failed") from exc

    async def warm(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluates ``messages`` into the KV cache (one throwaway token) so the next turn starts warm."""

        def run() -> None:
            self._llm.create_chat_completion(messages=list(messages), max_tokens=1)  # type: ignore[arg-type]

        await asyncio.get_running_loop().run_in_executor(self._executor, run)
