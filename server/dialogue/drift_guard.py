"""Keeps a reply in its language: each sentence is checked before it can reach speech synthesis.

A drifted first sentence makes the model try again, once, with a note naming the language on the person's
message; a drifted sentence after that (or in the retry) is dropped, so the reply ends with what was good.
Nothing that drifted is spoken, or enters the history (the history holds what was spoken).

Language and chat replies are guarded. In chat the bot follows the person's language: speech recognition may
hear any of the 13 languages (the session's is the fallback), and the language a typed or transcribed message
is clearly written in becomes that turn's reply language (and voice).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from server.dialogue.language_check import check, detect, settled
from server.dialogue.text import SentenceSplitter
from server.languages import LANGUAGES
from server.providers.base import ChatMessage

logger = logging.getLogger(__name__)

GUARDED_MODES = {"language", "chat"}
RETRIES = 1
REMINDER = "Reply in {}."  # the small model follows a note on the last message better than its system prompt


def heard_languages(mode: str) -> tuple[str, ...]:
    """Languages speech recognition may hear besides the session's: any of them in chat, none otherwise."""
    return tuple(LANGUAGES) if mode == "chat" else ()


def reply_language(mode: str, session_language: str, user_text: str) -> str:
    """The language this turn's reply should be in (and spoken with)."""
    if mode == "chat":
        return detect(user_text) or session_language
    return session_language


async def _sentences(stream: AsyncIterator[str], language: str) -> AsyncIterator[str | None]:
    """The stream's sentences (or a first clause that clearly is in ``language``); None as each delta arrives.

    The first sentence may be cut at a clause so that speech starts sooner, but "Oh, that's nice," has too
    few words to tell its language: such a clause waits for the rest of its sentence.
    """
    splitter = SentenceSplitter()
    pending = ""
    async for delta in stream:
        yield None
        for piece in splitter.feed(delta):
            piece = f"{pending} {piece}".strip()
            pending = ""
            if piece[-1] in ",;:" and not settled(piece, language):
                pending = piece
            else:
                yield piece
    rest = f"{pending} {splitter.flush()}".strip()
    if rest:
        yield rest


def remind(messages: list[ChatMessage], language: str) -> list[ChatMessage]:
    """The messages with a note on the person's last one naming the reply's language."""
    *before, last = messages
    note = REMINDER.format(LANGUAGES[language].name)
    return [*before, {"role": last["role"], "content": f"{last['content']}\n({note})"}]


async def guard(
    stream: Callable[[list[ChatMessage]], AsyncIterator[str]],
    messages: list[ChatMessage],
    mode: str,
    language: str,
    session_language: str | None = None,
    retries: int = RETRIES,
) -> AsyncIterator[str]:
    """The model's deltas for ``messages``, passed on sentence by sentence once each is known to be in
    ``language``. A new try, or a reply in another language than the session's (chat), gets a reminder."""
    if mode not in GUARDED_MODES:
        async with aclosing(stream(messages)) as deltas:  # type: ignore[type-var]
            async for delta in deltas:
                yield delta
        return
    started = False
    switched = session_language is not None and language != session_language
    for attempt in range(retries + 1):
        spoke = False
        prompt = remind(messages, language) if attempt or switched else messages
        async with aclosing(stream(prompt)) as deltas, aclosing(_sentences(deltas, language)) as sentences:  # type: ignore[type-var]
            async for sentence in sentences:
                if sentence is None:
                    if not started:
                        started = True
                        yield ""  # the reply's first-token clock still times the model, not this check
                    continue
                verdict = check(sentence, language)
                if verdict.ok:
                    spoke = True
                    yield verdict.text + " "
                elif not spoke and attempt < retries:
                    logger.info("reply drifted from %s (%s): generating it again", language, verdict.reason)
                    break
                else:
                    logger.info("reply sentence drifted from %s (%s): dropped", language, verdict.reason)
            else:
                return
