"""The writing systems of the supported languages, as Unicode ranges: defined here once, read everywhere.

Each value is the inside of a regex character class (``f"[{SCRIPTS['han']}]"``). Blocks come from the
Unicode charts; each script lists its main block and the extensions the models and Whisper actually emit
(CJK extension A, compatibility ideographs, half-width katakana, Hangul jamo, Arabic presentation forms).
"""

from __future__ import annotations

SCRIPTS = {
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9d",
    "hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "devanagari": "\u0900-\u097f\ua8e0-\ua8ff",
    "cyrillic": "\u0400-\u04ff\u0500-\u052f",
    "latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
}
# Scripts written without spaces between words (Hangul has spaces, but is grouped with them as "CJK" text: a
# stray run of any of the three in a Latin-script reply is a leak to drop, and Whisper loops on them alike).
CJK_SCRIPTS = ("han", "kana", "hangul")
CJK = "".join(SCRIPTS[s] for s in CJK_SCRIPTS)
# Combining marks inside a word (Devanagari vowel signs, Arabic harakat, Latin accents as separate code points):
# not letters of their own, they belong to the word around them.
MARKS = "\u0300-\u036f\u064b-\u065f\u0670\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963"
