"""Is this sentence in the session's language? Script checks for every language, stop words for Latin ones.

The small embedded model drifts: Chinese characters leak into Spanish, a French reply turns English, Hindi
comes out romanized. Each reply sentence is checked before it is spoken (``drift_guard.py``).

Letters are counted in units: a word for alphabetic scripts (Latin, Cyrillic, Arabic, Devanagari, Hangul),
a character for Han and kana (they have no spaces between words). Digits and punctuation do not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Script of each unit, by Unicode block.
_SCRIPTS = {
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9d",
    "hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "devanagari": "\u0900-\u097f\ua8e0-\ua8ff",
    "cyrillic": "\u0400-\u04ff\u0500-\u052f",
    "latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
}
_CHARACTER_SCRIPTS = ("han", "kana")  # one unit per character
_UNIT = re.compile(
    "|".join(f"(?P<{name}>[{chars}]{'' if name in _CHARACTER_SCRIPTS else '+'})" for name, chars in _SCRIPTS.items())
    + "|(?P<other>[^\\W\\d_])"  # a letter of a script none of the 13 languages uses (Greek, Thai, ...)
)
# A mark inside a word (Devanagari vowel signs, Arabic harakat) is not a letter: it joins the word around it.
_MARKS = re.compile(r"[\u0300-\u036f\u064b-\u065f\u0670\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963]")

NATIVE_SCRIPTS = {
    "zh": {"han"}, "ja": {"kana", "han"}, "ko": {"hangul"}, "ar": {"arabic"}, "hi": {"devanagari"},
    "ru": {"cyrillic"},
}  # fmt: skip
LATIN_LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl")

# Frequent words that are (nearly) only found in one of the Latin-script languages. Words two of them share
# ("de", "que", "la", "un", "je", "was", "is", "en", "du", "il", "por") are left out: they would count for both.
STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and are you your what that this with have did it's i'm i'd that's don't let's of for my how "
        "about like can would there they be not but today really very good great yes it she we're you're "
        "doesn't what's where why when which some any much many been has had will just",
        "es": "el los las y es qué muy pero cómo hoy yo hiciste hace eso esto también gusta hay estoy fue "
        "puedes quieres tienes usted tú mí mucho dónde cuándo hola gracias ahora así",
        "pt": "os é você não um uma muito mas eu meu minha do dos na em isso isto também hoje fez gosta "
        "gosto bem sim ao são tem foi pode quer seu sua ele ela estou então olá obrigado obrigada fazer "
        "coisa agora nós",
        "fr": "les et est c'est vous elle nous une des qui pas ne très mais avec pour dans sur ce cette ça "
        "aujourd'hui fait oui mon ton quoi j'ai qu'est aussi au aux être suis comme alors peux bonjour merci "
        "tout où parce qu'il n'est",
        "de": "der die das und ist ich du nicht ein eine einen mit auf für sehr aber auch heute hast hat bin "
        "bist sie wir zu den dem im mir dich dir gut nein gemacht schön noch schon oder wenn dass gerne mal "
        "hallo danke etwas jetzt warum",
        "it": "gli è che non molto anche oggi hai ho sono ti io cosa come della delle nel nella questo questa "
        "bene sì fatto piace perché ciao facciamo dove dei alla alle allora davvero grazie anch'io c'è "
        "qualcosa adesso",
        "nl": "het een van niet ik jij wat dat met op voor zijn maar ook heb hebt heeft vandaag gedaan leuk "
        "goed mooi naar om hoe wij jullie nog wel kun kunt graag waar mijn jouw bent dank bedankt iets nu "
        "waarom",
    }.items()
}
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
    by_script = {"han": "zh", "hangul": "ko", "arabic": "ar", "devanagari": "hi", "cyrillic": "ru"}
    if script in by_script:
        return by_script[script]
    if script == "latin":
        return latin_language(text)
    return None
