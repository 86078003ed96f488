"""Reply text for the ear: sentences cut from a token stream, and spoken-form clean-up."""

from __future__ import annotations

import re

from server.languages import ENDERS, LANGUAGES, WESTERN_ENDERS
from server.scripts import CJK

# A sentence ends at . ! ? … followed by a space, not inside "e.g." or "3.5"; at any other language's ender
# (。！？ । ؟, server/languages.py) where it stands. Every language's enders count: a chat reply may switch.
_AT_ONCE = "".join(c for c in ENDERS if c not in WESTERN_ENDERS)
_END = re.compile(
    r"(?<!\b[A-Z])(?<!\be\.g)(?<!\bi\.e)(?<!\bMr)(?<!\bMrs)(?<!\bDr)(?<!\bvs)"
    rf"[{re.escape(WESTERN_ENDERS)}]+[\"')\]]*\s|[{re.escape(_AT_ONCE)}]|\n+"
)
# The first sentence may be cut earlier, at a clause, so the first audio starts sooner.
_CLAUSE = re.compile(r"[,;:]\s")
FIRST_CLAUSE_MIN = 30

_MARKDOWN = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*+]\s+|^\s*\d+\.\s+)", re.MULTILINE)
_BIG_O = re.compile(r"\bO\(([^)]{1,12})\)")
_CJK = re.compile(f"[{CJK}]+")
_EMOJI = re.compile(r"[\U0001f300-\U0001faff\u2600-\u27bf]")
CJK_LANGUAGES = {code for code, language in LANGUAGES.items() if language.cjk}


_FENCED = re.compile(r"```.*?(```|$)", re.DOTALL)  # a code block is not read out
_POWER = {"2": "squared", "3": "cubed"}
# Symbols as words, English only (other languages keep their own punctuation habits).
_SYMBOLS = [
    (re.compile(r"\be\.g\.,?", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.,?", re.IGNORECASE), "that is"),
    (re.compile(r"\betc\.", re.IGNORECASE), "and so on"),
    (re.compile(r"\bvs\.?(?=\s)", re.IGNORECASE), "versus"),
    (re.compile(r"\s*(==|!=|<=|>=|->|=>|&&|\|\|)\s*"), None),
    (re.compile(r"(?<=\d)\s*%"), " percent"),
    (re.compile(r"(?<=\w)\s*\+\s*(?=\w)"), " plus "),
    (re.compile(r"\s+[=]\s+"), " equals "),
    (re.compile(r"\s+&\s+"), " and "),
    (re.compile(r"(?<=[a-z])_(?=[a-z])"), " "),  # snake_case names
]
_OPERATORS = {"==": "equals", "!=": "is not equal to", "<=": "is at most", ">=": "is at least", "->": "to",
              "=>": "to", "&&": "and", "||": "or"}  # fmt: skip
# Code keywords are lower case, so "For example: ..." or "If you want, ..." are sentences, not code.
_CODE_LINE = re.compile(
    r"[{};]\s*$|^\s*(def|class|return|import|from|for|while|if|elif|else|var|let|const|function|public|"
    r"private|int|void|SELECT|INSERT|UPDATE)\b.*[:({=]|[A-Za-z_]\w+\([^)]*\)\s*[:{]\s*$|^\s*[#/]{2}|^\s*\w+\s*=\s*\S+\s*$"
)


def looks_like_code(text: str) -> bool:
    """True for a line of source code, which should not be read aloud."""
    return bool(_CODE_LINE.search(text.strip()))


def _complexity(inner: str) -> str:
    inner = re.sub(r"\^(\d)", lambda m: f" {_POWER.get(m.group(1), 'to the ' + m.group(1))}", inner)
    inner = inner.replace("*", " times ").replace("^", " to the ")
    return "O of " + re.sub(r"\s+", " ", inner).strip()


def _words_for_symbols(text: str) -> str:
    for pattern, words in _SYMBOLS:
        if words is None:
            text = pattern.sub(lambda m: f" {_OPERATORS[m.group(1)]} ", text)
        else:
            text = pattern.sub(words, text)
    return text


def spoken(text: str, language: str = "en") -> str:
    """Text as it should be said: no markdown, code blocks or emoji, "O(n^2)" as "O of n squared", symbols as
    words in English ("==" as "equals"), no stray CJK characters (the small model lets a few leak into other
    languages)."""
    text = _FENCED.sub(" ", text)
    if looks_like_code(text):
        return ""  # a line of a code block the fences did not catch (its fence was in an earlier sentence)
    text = _MARKDOWN.sub("", text)
    text = _BIG_O.sub(lambda m: _complexity(m.group(1)), text)
    if language == "en":
        text = _words_for_symbols(text)
    text = _EMOJI.sub("", text)
    if language not in CJK_LANGUAGES:
        text = _CJK.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


class SentenceSplitter:
    """Feed text deltas, get complete sentences back as soon as they end."""

    def __init__(self, first_clause_min: int = FIRST_CLAUSE_MIN) -> None:
        self._buffer = ""
        self._first = True
        self._first_clause_min = first_clause_min

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._cut()
            if cut is None:
                return out
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if sentence:
                out.append(sentence)
                self._first = False

    def _cut(self) -> int | None:
        match = _END.search(self._buffer)
        if match:
            return match.end()
        if self._first and len(self._buffer) >= self._first_clause_min:
            clauses = list(_CLAUSE.finditer(self._buffer))
            if clauses and clauses[-1].end() >= self._first_clause_min // 2:
                return clauses[-1].end()
        return None

    def flush(self) -> str:
        rest, self._buffer = self._buffer.strip(), ""
        return rest


def heard_part(text: str, fraction: float) -> str:
    """The words of ``text`` played by the time ``fraction`` of its audio went out."""
    words = text.split()
    count = int(len(words) * max(0.0, min(1.0, fraction)))
    return " ".join(words[:count])
