"""The conversation the model sees: a system prompt and a window of recent messages, within a token budget.

Only what the person actually heard is kept for the assistant. After a barge-in the assistant message holds
the played words (marked interrupted in the history), and the person's next message reaches the model with
``[INTERRUPTED]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from server.providers.base import ChatMessage
from server.scripts import CJK

INTERRUPTED_MARK = "[INTERRUPTED]"
MIN_INTERRUPTED_WORDS = 3
# Chat-template tokens around each message (Qwen: "<|im_start|>user\n" ... "<|im_end|>\n", 5 tokens), rounded up.
MESSAGE_OVERHEAD = 6
TRIM_TO = 0.6  # over the budget, the history is cut to this share of it in one step (the cached prefix survives)

TokenCounter = Callable[[str], int]
_CJK = re.compile(f"[{CJK}]")


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` without the model's tokenizer (a remote model), rounded up: a Chinese, Japanese or Korean
    character is about one token in the tokenizers of GPT-4o and Qwen, other text about three characters a token
    (English is nearer four)."""
    cjk = len(_CJK.findall(text))
    return cjk + -(-(len(text) - cjk) // 3)


@dataclass(frozen=True)
class Message:
    role: str
    text: str
    interrupted: bool = False
    tokens: int = 0  # the text's tokens and the template's around it


class Conversation:
    """History window of ``window`` messages (20), and of ``budget`` tokens when given.

    The window is trimmed in steps, down to ``keep`` messages, not one message per turn: an unchanged prefix
    lets the embedded LLM reuse its KV cache, while sliding by one would re-evaluate the whole prompt each turn.
    The token budget (the model's context less its reply) is kept the same way: a prompt that would be over it
    drops its oldest messages down to ``TRIM_TO`` of it. Long typed messages (2,000 characters of Chinese are
    1,155 tokens to Qwen) would otherwise fill the context within a few turns, and every later turn would fail.
    """

    def __init__(
        self,
        system_prompt: str,
        window: int = 20,
        keep: int = 12,
        budget: int | None = None,
        count_tokens: TokenCounter = estimate_tokens,
    ) -> None:
        self.window = window
        self.keep = keep
        self.budget = budget
        self._count = count_tokens
        self._counted: tuple[str, int] | None = None
        self.history: list[Message] = []
        self._interrupted = False
        self._interrupted_before = False  # as it was before the last user message (take_back restores it)
        self.system_prompt = system_prompt
        self._system_tokens = self._tokens(system_prompt)

    def _tokens(self, text: str) -> int:
        # The last count is kept: a turn's words are counted for its prompt, then again as they join the history
        # (the embedded tokenizer runs on the loop: ~5 ms for 2,000 characters of Chinese on the busy 2 cores).
        if self._counted is None or self._counted[0] != text:
            self._counted = (text, self._count(text) + MESSAGE_OVERHEAD)
        return self._counted[1]

    def _user_content(self, text: str) -> str:
        content = f"{INTERRUPTED_MARK} {text}" if self._interrupted else text
        return self._fitted_text(content)

    def _fitted_text(self, content: str) -> str:
        """``content`` cut to what fits the budget beside the system prompt alone (its beginning is kept). Only a
        tight budget or text of rare characters (several tokens each) needs it."""
        if self.budget is None:
            return content
        room = self.budget - self._system_tokens
        while content and (tokens := self._tokens(content)) > room:
            content = content[: max(0, min(len(content) - 1, int(len(content) * room / tokens) - 1))]
        return content

    def _fitted(self, extra: int) -> list[Message]:
        """The history that goes before a new message of ``extra`` tokens: all of it while the prompt fits the
        budget, else its newest messages, down to ``TRIM_TO`` of the budget and starting with the person's."""
        history = self.history
        total = self._system_tokens + sum(m.tokens for m in history) + extra
        if self.budget is None or total <= self.budget:
            return history
        start = 0
        while start < len(history) and (total > self.budget * TRIM_TO or history[start].role != "user"):
            total -= history[start].tokens
            start += 1
        return history[start:]

    def add_user(self, text: str) -> Message:
        content = self._user_content(text)
        tokens = self._tokens(content)
        self.history = self._fitted(tokens)
        message = Message("user", content, tokens=tokens)
        self._append(message)
        self._interrupted_before = self._interrupted
        self._interrupted = False
        return message

    def take_back(self, message: Message) -> None:
        """Removes the user's ``message`` (the last one added) and what followed it: the person took that turn up
        again, and it is added again whole."""
        for at in range(len(self.history) - 1, -1, -1):
            if self.history[at] is message:
                del self.history[at:]
                self._interrupted = self._interrupted_before
                return

    def with_user(self, text: str) -> list[ChatMessage]:
        """The messages as they will be once ``text`` is added, without adding it (speculative turns)."""
        content = self._user_content(text)
        history = self._fitted(self._tokens(content))
        return [self._system(), *self._as_chat(history), {"role": "user", "content": content}]

    def add_assistant(self, text: str, interrupted: bool = False) -> None:
        if interrupted:
            self._interrupted = True
            if len(text.split()) < MIN_INTERRUPTED_WORDS:
                return  # a word or two says nothing; the marker on the next user message says enough
        self._append(Message("assistant", text, interrupted, self._tokens(text)))

    def _append(self, message: Message) -> None:
        self.history.append(message)
        if len(self.history) > self.window:
            self.history = self.history[-self.keep :]
            # Chat templates expect the first turn after the system prompt to be the user's.
            while self.history and self.history[0].role != "user":
                self.history.pop(0)

    def reset(self, system_prompt: str | None = None) -> None:
        if system_prompt is not None:
            self.system_prompt = system_prompt
            self._system_tokens = self._tokens(system_prompt)
        self.history.clear()
        self._interrupted = self._interrupted_before = False

    def messages(self) -> list[ChatMessage]:
        return [self._system(), *self._as_chat(self.history)]

    def _system(self) -> ChatMessage:
        return {"role": "system", "content": self.system_prompt}

    @staticmethod
    def _as_chat(history: list[Message]) -> list[ChatMessage]:
        # A cut-off reply goes in as the words that were heard, with no trailing "...": the small model copies
        # the shape of its earlier replies, and fragments taught it to answer in fragments.
        return [{"role": m.role, "content": m.text} for m in history]
