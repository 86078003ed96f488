"""Openings read once: llama.cpp's KV state after each recently used conversation opening (a mode's system prompt
in one language, and the interview's example exchange), kept to load rather than read again.

Reading an opening (150-600 tokens) into an empty cache takes the embedded 1.5B model 3-9 s on two busy cores;
loading its saved state takes milliseconds. The KV cache holds one conversation at a time, so without this every
call that follows a call in another mode or language, and the first call after start-up, waited for it before the
first word of its reply. The state of one sequence is its KV cells only (~28 KB a token for Qwen2.5-1.5B, 4-17 MB
an opening): ``capacity`` of them are kept, the least recently used dropped.

Not ``Llama.save_state``: that also copies the logits of every token read (600 KB a token here), and its
``load_state`` fails on prompts longer than a batch. All methods run on the model's own thread.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from typing import Any

import llama_cpp

logger = logging.getLogger(__name__)

SEQUENCE = 0  # every prompt here is llama.cpp's sequence 0


class PromptStates:
    def __init__(self, llm: Any, capacity: int = 8) -> None:
        self._llm = llm  # a llama_cpp.Llama
        self._capacity = capacity
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.loads = 0  # openings loaded rather than read

    def __len__(self) -> int:
        return len(self._states)

    @property
    def size_bytes(self) -> int:
        return sum(len(state) for state in self._states.values())

    @property
    def longest_kept(self) -> int:
        """Tokens in the longest kept opening: a cache holding more of a prompt than that needs none of them."""
        return max(map(len, self._states), default=0)

    def closest(self, tokens: list[int]) -> tuple[list[int], int]:
        """The kept opening that shares the longest beginning with ``tokens``, and the length of that beginning
        (([], 0) when none does)."""
        best: tuple[list[int], int] = ([], 0)
        for key in self._states:  # (at most ``capacity``; each compared up to where it differs)
            shared = self._llm.longest_token_prefix(key, tokens)
            if shared > best[1]:
                best = (list(key), shared)
        return best

    def load(self, head: list[int]) -> bool:
        """Puts the cache in the state after reading ``head`` (and nothing else), if that state was kept. The caller
        may cut it shorter (``n_tokens``): llama.cpp drops the cells beyond before its next read."""
        state = self._states.get(tuple(head))
        if state is None:
            return False
        self._states.move_to_end(tuple(head))
        llm = self._llm
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(state), SEQUENCE) == 0:
            logger.warning("loading a kept prompt state failed; the prompt is read instead")
            llm.n_tokens = 0
            return False
        llm.input_ids[: len(head)] = head
        llm.n_tokens = len(head)
        llm._requires_eval = True  # no logits of the last token are loaded: llama-cpp-python must read one again
        self.loads += 1
        return True

    def keep(self, head: list[int]) -> None:
        """Keeps the cache's state; it holds exactly ``head`` now."""
        key = tuple(head)
        if key in self._states:
            self._states.move_to_end(key)
            return
        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, SEQUENCE)
        if written == 0:
            logger.warning("keeping a prompt state failed")
            return
        self._states[key] = bytes(buffer)[:written]
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
        logger.debug("kept the state of a %d-token prompt (%d bytes; %d kept)", len(head), written, len(self))
