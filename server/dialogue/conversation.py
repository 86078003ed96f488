"""The conversation the model sees: a system prompt and a window of recent messages.

Only what the person actually heard is kept for the assistant. After a barge-in the assistant message holds
the played words (marked interrupted in the history), and the person's next message reaches the model with
``[INTERRUPTED]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.providers.base import ChatMessage

INTERRUPTED_MARK = "[INTERRUPTED]"
MIN_INTERRUPTED_WORDS = 3


@dataclass(frozen=True)
class Message:
    role: str
    text: str
    interrupted: bool = False


class Conversation:
    """History window of ``window`` messages (20).

    The window is trimmed in steps, down to ``keep`` messages, not one message per turn: an unchanged prefix
    lets the embedded LLM reuse its KV cache, while sliding by one would re-evaluate the whole prompt each turn.
    """

    def __init__(self, system_prompt: str, window: int = 20, keep: int = 12) -> None:
        self.system_prompt = system_prompt
        self.window = window
        self.keep = keep
        self.history: list[Message] = []
        self._interrupted = False

    def _user_content(self, text: str) -> str:
        return f"{INTERRUPTED_MARK} {text}" if self._interrupted else text

    def add_user(self, text: str) -> None:
        self._append(Message("user", self._user_content(text)))
        self._interrupted = False

    def with_user(self, text: str) -> list[ChatMessage]:
        """The messages as they will be once ``text`` is added, without adding it (speculative turns)."""
        return [*self.messages(), {"role": "user", "content": self._user_content(text)}]

    def add_assistant(self, text: str, interrupted: bool = False) -> None:
        if interrupted:
            self._interrupted = True
            if len(text.split()) < MIN_INTERRUPTED_WORDS:
                return  # a word or two says nothing; the marker on the next user message says enough
        self._append(Message("assistant", text, interrupted))

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
        self.history.clear()
        self._interrupted = False

    def messages(self) -> list[ChatMessage]:
        out: list[ChatMessage] = [{"role": "system", "content": self.system_prompt}]
        # A cut-off reply goes in as the words that were heard, with no trailing "...": the small model copies
        # the shape of its earlier replies, and fragments taught it to answer in fragments.
        out.extend({"role": m.role, "content": m.text} for m in self.history)
        return out
