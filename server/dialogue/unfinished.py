"""Does what the person said so far sound unfinished? A turn-end cue beyond silence.

The speculative transcription that starts at a pause (see ``Call._speculate``) arrives while the hang-over
is still running. When its words trail off ("... because", "and the", "I think that,", "..."), the person is
most likely thinking, not done: the session then gives the current silence ``UNFINISHED_EXTRA_MS`` more
before it takes the turn as over. A finished-sounding sentence keeps the mode's normal hang-over.
"""

from __future__ import annotations

import re

UNFINISHED_EXTRA_MS = 1000

# Words a sentence does not end on: conjunctions, articles, prepositions, fillers. Per language where the
# list is short and clear; other languages use the punctuation cue only.
_TRAILING = {
    "en": "and but or because since although though if when while which whose the a an to of in on at for with "
    "from by into than um uh er erm my your our their i",
    "es": "y e o u pero porque que como cuando si el la los las un una de del en con por para mi tu su es eh este",
    "fr": "et ou mais donc parce que qui quand si le la les un une de des du en avec pour par mon ma ton ta "
    "son sa est euh",
    "de": "und oder aber weil dass wenn als der die das den dem ein eine einen zu von mit für auf in im ist äh ähm",
    "it": "e o ma perché che quando se il lo la i gli le un una di del della in con per mio mia è ehm",
    "pt": "e ou mas porque que quando se o a os as um uma de do da em com para por meu minha é né",
    "nl": "en of maar omdat dat als de het een van in op met voor naar mijn is eh uh",
}
_WORDS = {language: frozenset(words.split()) for language, words in _TRAILING.items()}
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
    return bool(words) and words[-1] in _WORDS.get(language, frozenset())
