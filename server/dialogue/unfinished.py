"""Does what the person said so far sound unfinished? A turn-end cue beyond silence.

The speculative transcription that starts at a pause (see ``TurnTaker._speculate``) arrives while the
hang-over is still running. When its words trail off ("... because", "and the", "I think that,", "..."), the
person is most likely thinking, not done: the reply then gives the current silence ``TurnOptions.unfinished_extra_ms``
more before it takes the turn as over. A finished-sounding sentence keeps the mode's normal hang-over.
"""

from __future__ import annotations

import re

from server.languages import LANGUAGES

# "that" ends "I like that." but not "the difference is that": only after these words.
_THAT_AFTER = frozenset("is was think thought say said know believe mean means so".split())
_TRAILING_MARKS = ("...", "…", ",", "-", "—", ":", "、", "，")
_WORD = re.compile(r"\w+", re.UNICODE)


def looks_unfinished(text: str, language: str) -> bool:
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith(_TRAILING_MARKS):
        return True
    if stripped.endswith(("?", "？")):
        return False  # a question, even one that ends on a preposition ("where are you from?")
    words = _WORD.findall(stripped.lower())
    if language == "en" and len(words) > 1 and words[-1] == "that":
        return words[-2] in _THAT_AFTER
    # Words a sentence does not end on, per language (server/languages.py); where the table has none, the
    # punctuation above is the only cue.
    trailing = LANGUAGES[language].unfinished if language in LANGUAGES else frozenset()
    return bool(words) and words[-1] in trailing
