"""Listening ahead: while the person is still talking, what they have said so far is transcribed and handed to
the chat model to read into its KV cache. When their turn ends, the model only has the last words left to
read before it answers.

The embedded model reads about 35 tokens a second on 2 cores, so a 20-word turn used to cost ~0.9 s before
the first token; read ahead, ~0.35 s. The partial transcript's last word is left out (it may be cut in the
middle); whatever differs from the final transcript is read again, so a wrong guess costs only time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np

from server.turn_options import TurnOptions

logger = logging.getLogger(__name__)


def listens_ahead(setting: str, llm_reads_ahead: bool, stt_provider: str) -> bool:
    """``PARLEY_LISTEN_AHEAD``: on, off, or auto (when the chat model has a cache to read into and partial
    transcripts cost nothing but local CPU)."""
    if setting == "auto":
        return llm_reads_ahead and stt_provider == "local"
    return setting == "on"


class ListeningAhead:
    """One per call. ``heard(audio)`` is called with the utterance so far while the person speaks;
    ``pause()`` when they fall quiet (the real turn needs the models now); ``reset()`` at a new utterance."""

    def __init__(
        self,
        transcribe: Callable[[np.ndarray], Awaitable[str]],
        prefill: Callable[[str], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        rate: int = 16_000,
        every_s: float = TurnOptions.ahead_every_s,
        min_words: int = TurnOptions.ahead_min_words,
    ) -> None:
        self._transcribe = transcribe
        self._prefill = prefill
        self._spawn = spawn  # the call's tasks are cancelled when it closes
        self._step = int(every_s * rate)  # a new partial transcript once this much more speech has come in
        self._min_words = min_words  # no more words so far: nothing worth reading ahead
        self._next_at = self._step  # samples of speech the next partial waits for
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def heard(self, audio_samples: int, audio: Callable[[], np.ndarray]) -> None:
        """``audio_samples`` of speech so far; ``audio()`` builds them (only when a partial starts)."""
        if audio_samples < self._next_at or self.busy:
            return
        self._next_at = audio_samples + self._step
        self._task = self._spawn(self._read_ahead(audio()))

    async def _read_ahead(self, audio: np.ndarray) -> None:
        try:
            text = await self._transcribe(audio)
            words = text.split()
            if len(words) <= self._min_words:
                return
            await self._prefill(" ".join(words[:-1]))  # the last word may be cut
        except asyncio.CancelledError:
            raise
        except Exception:  # an optimisation only: the turn itself reports failures
            logger.warning("reading ahead failed", exc_info=True)

    def pause(self) -> None:
        """Stops reading ahead: the models are needed for the turn (the person may also just be pausing)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def reset(self) -> None:
        self.pause()
        self._next_at = self._step
