"""Is this sentence in the session's language? Script checks for every language, stop words for Latin ones.

The small embedded model drifts: Chinese characters leak into Spanish, a French reply turns English, Hindi
comes out romanized. Each reply sentence is checked before it is spoken (``drift_guard.py``).

Letters are counted in units: a word for alphabetic scripts (Latin, Cyrillic, Arabic, Devanagari, Hangul),
a character for Han and kana (they have no spaces between words). Digits and punctuation do not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.languages import BY_SCRIPT, LANGUAGES
from server.scripts import MARKS, SCRIPTS

_CHARACTER_SCRIPTS = ("han", "kana")  # one unit per character
_UNIT = re.compile(
    "|".join(f"(?P<{name}>[{chars}]{'' if name in _CHARACTER_SCRIPTS else '+'})" for name, chars in SCRIPTS.items())
    + "|(?P<other>[^\\W\\d_])"  # a letter of a script none of the languages uses (Greek, Thai, ...)
)
# A mark inside a word (Devanagari vowel signs, Arabic harakat) is not a letter: it joins the word around it.
_MARKS = re.compile(f"[{MARKS}]")

NATIVE_SCRIPTS = {code: set(language.scripts) for code, language in LANGUAGES.items()}
LATIN_LANGUAGES = tuple(code for code, language in LANGUAGES.items() if language.latin)
# Frequent words that are (nearly) only found in one of the Latin-script languages (server/languages.py).
STOP_WORDS = {code: language.stop_words for code, language in LANGUAGES.items() if language.stop_words}
LOOP_REPEATS = 3
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str  # the sentence as it may be spoken (a single stray foreign unit removed)
    reason: str = ""


def units(text: str) -> list[tuple[str, str]]:
    """(script, unit) for every letter unit of ``text``."""
    text = _MARKS.sub("", text)
    return [(m.lastgroup or "other", m.group()) for m in _UNIT.finditer(text)]


def stop_word_scores(text: str) -> dict[str, int]:
    words = _WORD.findall(text.lower().replace("’", "'"))
    return {lang: sum(w in vocabulary for w in words) for lang, vocabulary in STOP_WORDS.items()}


def latin_language(text: str) -> str | None:
    """The Latin-script language whose frequent words the text clearly uses most, if any."""
    scores = stop_word_scores(text)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    return best if top >= 2 and top >= 2 * second else None


def loops(text: str) -> bool:
    """A model stuck in a loop: some three words in a row come back three times or more (its Hindi does)."""
    words = text.lower().split()
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - 2):
        key = tuple(words[i : i + 3])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] >= LOOP_REPEATS:
            return True
    return False


def check(sentence: str, language: str) -> Verdict:
    """Whether ``sentence`` may be spoken in a ``language`` session."""
    found = units(sentence)
    if not found:
        return Verdict(True, sentence)  # numbers, punctuation
    if loops(sentence):
        return Verdict(False, sentence, "repeats itself")
    native = NATIVE_SCRIPTS.get(language, {"latin"})
    allowed = native | {"latin"}  # brand names, "OK", "email" appear in every language
    foreign = [u for s, u in found if s not in allowed]
    native_count = sum(s in native for s, _ in found)
    if len(foreign) == 1 and native_count >= 4:
        # One leaked character or word in an otherwise good sentence: drop it rather than the sentence.
        return _also_words(sentence.replace(foreign[0], "", 1), language, native_count)
    if foreign:
        return Verdict(False, sentence, f"{len(foreign)} units in another script")
    if native_count * 2 < len(found):
        return Verdict(False, sentence, "mostly Latin script")
    if language == "ja" and native_count >= 6 and not any(s == "kana" for s, _ in found):
        return Verdict(False, sentence, "Han characters without kana: Chinese")
    return _also_words(sentence, language, native_count)


def _also_words(sentence: str, language: str, native_count: int) -> Verdict:
    if language not in LATIN_LANGUAGES:
        return Verdict(True, sentence)
    scores = stop_word_scores(sentence)
    own = scores[language]
    other, top = max(((lang, n) for lang, n in scores.items() if lang != language), key=lambda kv: kv[1])
    if top >= 2 and top > 2 * own:
        return Verdict(False, sentence, f"{other} words ({top} against {own})")
    return Verdict(True, sentence)


def settled(text: str, language: str) -> bool:
    """Whether a fragment says enough to be judged: scripts tell at once; Latin-script languages need at
    least one of their own frequent words, and no fewer than another language's."""
    if language not in LATIN_LANGUAGES:
        return True
    scores = stop_word_scores(text)
    own = scores.pop(language)
    return own >= 1 and own >= max(scores.values())


def detect(text: str) -> str | None:
    """The language of ``text`` when it is clear (for following the person's language in chat), else None."""
    found = units(text)
    if not found:
        return None
    counts: dict[str, int] = {}
    for script, _ in found:
        counts[script] = counts.get(script, 0) + 1
    script = max(counts, key=lambda s: counts[s])
    if counts.get("kana"):
        return "ja"  # Japanese mixes kana and Han; kana appear in no other language
    if script in BY_SCRIPT:
        return BY_SCRIPT[script]
    if script == "latin":
        return latin_language(text)
    return None
