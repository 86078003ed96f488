"""Embedded chat model: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) on llama.cpp, KV cache kept warm.

One ``Llama`` serves every call from a single worker thread. llama-cpp-python reuses the longest prefix of
the previous prompt that is still in its KV cache, so a conversation whose history is only ever appended to
pays for its new tokens only (the system prompt is evaluated once, ahead of the first turn). ``prefill``
goes further: the words the person has said so far are evaluated while they are still talking.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from server.providers.base import ChatMessage, ProviderError
from server.providers.local import weights
from server.providers.local.prompt_states import PromptStates
from server.providers.local.threads import stream_from_thread

logger = logging.getLogger(__name__)

_CUT = "\u2063"  # an invisible separator marks where the person's words end in the rendered prompt
PREFILL_CHUNK = 4  # tokens per llama.cpp batch in prefill (~0.15 s here): how soon a stop takes effect
# Tokens per batch of a long new prompt, before the reply: how soon a superseded reply stops. Reading 600 new tokens
# took as long in 64-token batches as in one (8-40 s either way on the busy 2 cores, 2026-12-02), and a stop
# 0.5 s in ended the reading after the chunk in hand.
PROMPT_CHUNK = 64
# Tokens per batch of an opening read ahead of its call (at start-up, during the greeting): nobody waits on a stop.
OPENING_CHUNK = 32


class LlamaChat:
    reads_ahead = True

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
        self._states = PromptStates(self._llm)  # openings read before, loaded rather than read again
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = self._llm._model  # the same template and special tokens create_chat_completion renders with
        self._formatter = Jinja2ChatFormatter(
            template=self._llm.metadata["tokenizer.chat_template"],
            eos_token=model.token_get_text(self._llm.token_eos()),
            bos_token=model.token_get_text(self._llm.token_bos()) if self._llm.token_bos() != -1 else "",
        )

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (the conversation is trimmed by them). Called on the loop,
        once or twice a message: tokenizing reads only the vocabulary, 5-6 ms for 2,000 characters of Chinese
        (1,155 tokens) on the busy 2 cores, well under a model job's time."""
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def _generate(
        self, messages: Sequence[ChatMessage], temperature: float, max_tokens: int, stop: threading.Event
    ) -> Iterator[str]:
        started, cached = time.monotonic(), self._llm.n_tokens
        self._read_prompt(messages, stop)
        if stop.is_set():
            return
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

    def _read_prompt(self, messages: Sequence[ChatMessage], stop: threading.Event) -> None:
        """Reads a long new prompt into the cache in whole chunks, checking ``stop`` between them: a reply superseded
        while its prompt is read (2,000 typed characters of Chinese are 1,155 tokens, seconds here) stops within a
        chunk. A short one (a spoken turn after a warm cache) is left whole to ``create_chat_completion``, which reads
        it, and the rest of a long one, in one batch: a batch more would cost about a token's time."""
        tokens = self._tokens(messages)
        llm = self._llm
        kept = self._from_kept(tokens)
        if len(tokens) - kept < 2 * PROMPT_CHUNK:
            return
        end = kept + (len(tokens) - kept) // PROMPT_CHUNK * PROMPT_CHUNK
        llm.n_tokens = kept  # eval() drops the cache beyond this point before it appends
        for start in range(kept, end, PROMPT_CHUNK):
            if stop.is_set():
                return
            llm.eval(tokens[start : start + PROMPT_CHUNK])

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

    async def warm(self, messages: Sequence[ChatMessage], *, opening: bool = False) -> None:
        """Evaluates ``messages`` and the opening of the person's next message into the KV cache, so the next
        turn starts warm. An ``opening`` is kept, to be loaded rather than read by the next call that opens so."""
        await self.prefill([*messages, {"role": "user", "content": ""}], keep=opening)

    def _tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt of ``messages`` up to the end of the last one's text: no end-of-message token."""
        *before, last = messages
        rendered = self._formatter(messages=[*before, {**last, "content": last["content"] + _CUT}]).prompt
        prompt = rendered[: rendered.rindex(_CUT)]
        return self._llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def _from_kept(self, tokens: list[int]) -> int:
        """How much of ``tokens`` the cache holds, after loading the kept opening that shares most of their
        beginning when that is more than it held."""
        llm = self._llm
        kept = llm.longest_token_prefix(llm._input_ids, tokens)
        if kept >= self._states.longest_kept:  # the usual case, every prefill of a call: nothing to compare
            return kept
        opening, shared = self._states.closest(tokens)
        if shared > kept and self._states.load(opening):
            return shared
        return kept

    def _prefill(self, messages: Sequence[ChatMessage], stop: threading.Event, keep: bool = False) -> int:
        tokens = self._tokens(messages)
        llm = self._llm
        kept = self._from_kept(tokens)
        llm.n_tokens = kept  # eval() drops the cache beyond this point before it appends
        chunk = OPENING_CHUNK if keep else PREFILL_CHUNK
        for start in range(kept, len(tokens), chunk):
            if stop.is_set():
                break
            llm.eval(tokens[start : start + chunk])
        if keep and llm.n_tokens == len(tokens):
            self._states.keep(tokens)
        return llm.n_tokens - kept

    async def prefill(self, messages: Sequence[ChatMessage], keep: bool = False) -> None:
        """Evaluates ``messages`` into the KV cache up to the end of the last one's text, which the person is
        still speaking: their next words are appended to it, so only those are left for the reply."""
        stop = threading.Event()
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            added = await loop.run_in_executor(self._executor, self._prefill, messages, stop, keep)
        finally:
            stop.set()  # cancelled (the person paused): the worker stops after its current chunk
        logger.debug("prefilled %d tokens in %.0f ms", added, (time.monotonic() - started) * 1000)

    def _forget(self, messages: Sequence[ChatMessage]) -> None:
        llm = self._llm
        head = self._tokens([*messages[:1], {"role": "user", "content": ""}])  # the system prompt: kept warm
        cached = llm._input_ids
        if llm.longest_token_prefix(cached, self._tokens(messages)) <= len(head):
            return  # the cache holds another conversation now (or only the shared system prompt)
        keep = llm.longest_token_prefix(cached, head)
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        llm.n_tokens = keep
        logger.debug("forgot a conversation: %d tokens kept in the cache", keep)

    def forget(self, messages: Sequence[ChatMessage]) -> None:
        """The call that had ``messages`` has ended: its words leave the KV cache (its system prompt stays, warm for
        the next call). Queued behind the model's current work; returns at once."""
        if len(messages) > 1:
            self._executor.submit(self._forget, messages).add_done_callback(_log_failure)

    def cached_text(self) -> str:
        """What the KV cache holds, as text (for tests and debugging)."""
        return self._llm.detokenize(self._llm._input_ids.tolist(), special=True).decode(errors="replace")


def _log_failure(future: Future[None]) -> None:
    if future.exception() is not None:
        logger.warning("dropping a conversation from the cache failed", exc_info=future.exception())
