"""Which key points an interview answer covered, and the verdict that follows: decided by the app, never by
the chat model's own opinion of the answer (the embedded 1.5B model praises wrong answers, MODELS.md).

Offline by default: the answer (speech-to-text output, so "O of one", "hash map", "round robin") is cut into
clauses, lightly stemmed, and each key point's phrase groups are looked for in it, with a phrase that follows
"not", "never", "don't"... in the same clause not counting. When a remote OpenAI-compatible model is
configured it can judge instead (asked for JSON, with a timeout), falling back to the offline judge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from server.dialogue.bank import Question
from server.providers.base import ChatModel, ProviderError

logger = logging.getLogger(__name__)

MAY_MISS = 1  # key points a correct answer may leave out (3 of 4, 4 of 5); the feedback names the missing one
MAX_GAP = 2  # words that may sit between the words of a phrase ("hash THE key" for "hash key")
NEGATION_REACH = 3  # words before a phrase in which a negation cancels it


class Verdict(StrEnum):
    CORRECT = "correct"
    PARTLY = "partly"
    WRONG = "wrong"
    NO_ANSWER = "no_answer"


@dataclass(frozen=True)
class Judgement:
    question: Question
    answer: str
    covered: tuple[int, ...]  # indexes into question.key_points
    verdict: Verdict
    by: str  # "offline" | "remote"

    @property
    def covered_points(self) -> list[str]:
        return [self.question.key_points[i].point for i in self.covered]

    @property
    def missed_points(self) -> list[str]:
        return [kp.point for i, kp in enumerate(self.question.key_points) if i not in self.covered]


# -- normalizing what people say ------------------------------------------------------------------------------
_NUMBERS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
}  # fmt: skip
_FILLERS = {"a", "an", "the", "of", "um", "uh", "erm", "er", "basically", "like", "so", "well"}
_NEGATORS = {"not", "no", "never", "dont", "doesnt", "isnt", "arent", "cant", "cannot", "wont", "wouldnt",
             "shouldnt", "didnt", "nor", "neither", "without"}  # fmt: skip
# A negator followed by one of these is a hedge ("not sure", "don't know"), not a denial of what comes next.
_HEDGES = {"sure", "know", "idea", "certain", "remember", "only", "100", "entirely", "exactly"}
_CLAUSE_BREAK = re.compile(r"[.,;:!?]|\bbut\b|\bhowever\b|\balthough\b")
_BRITISH = re.compile(r"(?<=\w{3})is(e|ed|es|ing|ation|ations)$")


@lru_cache(maxsize=4096)
def stem(token: str) -> str:
    """A light suffix stripper: enough that "hashing"/"hashes"/"hashed" and "cache"/"caching" meet."""
    t = _BRITISH.sub(r"iz\1", token)
    if len(t) > 5 and t.endswith("ing"):
        t = t[:-3]
    elif len(t) > 4 and t.endswith(("ies", "ied")):
        t = t[:-3] + "y"
    elif len(t) > 4 and t.endswith("ed"):
        t = t[:-2]
    elif len(t) > 4 and t.endswith(("sses", "xes", "zes", "ches", "shes")):
        t = t[:-2]
    elif len(t) > 3 and t.endswith("s") and not t.endswith("ss"):
        t = t[:-1]
    if len(t) > 5 and t.endswith("er"):
        t = t[:-2]
    if len(t) > 5 and t.endswith("ly"):
        t = t[:-2]
    if len(t) > 3 and t.endswith("e"):
        t = t[:-1]
    if len(t) > 3 and t[-1] == t[-2] and t[-1] not in "lsz" and t[-1].isalpha():
        t = t[:-1]
    return t


def _words(text: str) -> list[str]:
    text = text.lower().replace("'", "").replace("\u2019", "")
    text = text.replace("+", " plus ").replace("&", " and ").replace("%", " percent ")
    words = [_NUMBERS.get(w, w) for w in re.findall(r"[a-z0-9]+", text)]
    tens: list[str] = []
    for w in words:  # "sixty two" -> 62
        last = tens[-1] if tens else ""
        if len(w) == 1 and w.isdigit() and len(last) == 2 and last.endswith("0") and last in _NUMBERS.values():
            tens[-1] = str(int(last) + int(w))
        else:
            tens.append(w)
    merged: list[str] = []
    for w in tens:  # status codes as said: "four twenty nine" -> 429, "four oh four" -> 404
        last = merged[-1] if merged else ""
        if w.isdigit() and len(w) == 2 and len(last) == 1 and last.isdigit() and last != "0":
            merged[-1] = last + w
        elif w.isdigit() and len(merged) > 1 and last == "oh" and merged[-2].isdigit() and len(merged[-2]) == 1:
            merged[-2:] = [merged[-2] + "0" + w]
        else:
            merged.append(w)
    return [w for w in merged if w not in _FILLERS]


@dataclass(frozen=True)
class Said:
    """An answer as words, each with the number of its clause (a negation reaches only within its clause;
    a phrase may run across a comma: "last in, first out")."""

    words: list[str]
    clause: list[int]

    @classmethod
    def parse(cls, text: str) -> Said:
        words: list[str] = []
        clause: list[int] = []
        for n, part in enumerate(_CLAUSE_BREAK.split(text.lower())):
            for word in _words(part):
                words.append(word)
                clause.append(n)
        return cls(words, clause)


@lru_cache(maxsize=4096)
def _phrase(phrase: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _words(phrase))


def _same(word: str, want: str) -> bool:
    stemmed = stem(word)
    if stemmed == want:
        return True
    # Phrases written as stems ("invalidat", "consisten") match any word they begin; short ones must be equal
    # ("data" is not "database").
    return len(want) >= 5 and (word.startswith(want) or stemmed.startswith(want))


def _starts(words: list[str], want: tuple[str, ...]) -> Iterator[int]:
    """Where ``want`` starts in ``words`` (its words in order, at most MAX_GAP apart)."""

    def rest(at: int, k: int) -> bool:
        if k == len(want):
            return True
        reach = range(at, min(len(words), at + MAX_GAP + 1))
        return any(_same(words[j], want[k]) and rest(j + 1, k + 1) for j in reach)

    for i, word in enumerate(words):
        if _same(word, want[0]) and rest(i + 1, 1):
            yield i


def _negated(said: Said, at: int) -> bool:
    words = said.words
    for j in range(max(0, at - NEGATION_REACH), at):
        hedge = j + 1 < len(words) and words[j + 1] in _HEDGES
        if said.clause[j] == said.clause[at] and words[j] in _NEGATORS and not hedge:
            return True
    return False


def says(said: Said, phrase: str) -> bool:
    """True when the answer says ``phrase`` somewhere without denying it."""
    want = _phrase(phrase)
    return bool(want) and any(not _negated(said, at) for at in _starts(said.words, want))


def offline_coverage(question: Question, answer: str) -> tuple[int, ...]:
    said = Said.parse(answer)
    return tuple(
        i
        for i, kp in enumerate(question.key_points)
        if all(any(says(said, phrase) for phrase in group) for group in kp.match)
    )


_DONT_KNOW = re.compile(
    r"\b(i (really )?(do ?n[o']?t|dont) (really |even )?know|no idea|not sure|no clue|"
    r"(i )?have(n'?t| not) (got )?a clue|(i )?(can'?t|cannot|do ?n[o']?t) remember|"
    r"never heard|i'?m? ?blank|pass on this|i give up)\b",
    re.IGNORECASE,
)


def says_dont_know(text: str) -> bool:
    return bool(_DONT_KNOW.search(text))


def verdict_for(covered: int, total: int, dont_know: bool) -> Verdict:
    if covered == 0:
        return Verdict.NO_ANSWER if dont_know else Verdict.WRONG
    return Verdict.CORRECT if covered >= max(2, total - MAY_MISS) else Verdict.PARTLY


# -- the remote model as judge --------------------------------------------------------------------------------
def _judge_prompt(question: Question, answer: str) -> list[dict[str, str]]:
    points = "\n".join(f"{i + 1}. {kp.point}" for i, kp in enumerate(question.key_points))
    return [
        {"role": "system", "content": "You grade answers in a technical interview. Reply with JSON only."},
        {
            "role": "user",
            "content": (
                f"Question: {question.text}\nKey points of a strong answer:\n{points}\n"
                f'Candidate\'s answer (from speech recognition, may contain misheard words): "{answer}"\n'
                "Which key points does the answer state correctly? A point that is missing, wrong or contradicted "
                'is not covered. Reply with JSON only, for example {"covered": [1, 3]} or {"covered": []}.'
            ),
        },
    ]


def parse_covered(reply: str, total: int) -> tuple[int, ...] | None:
    """The key point indexes (0-based) from the model's JSON, or None when it is not the JSON asked for."""
    match = re.search(r"\{.*\}", reply, re.DOTALL)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    covered = data.get("covered") if isinstance(data, dict) else None
    if not isinstance(covered, list) or not all(isinstance(n, int) and 1 <= n <= total for n in covered):
        return None
    return tuple(sorted({n - 1 for n in covered}))


async def remote_coverage(llm: ChatModel, question: Question, answer: str, timeout_s: float) -> tuple[int, ...] | None:
    text = ""
    try:
        async with asyncio.timeout(timeout_s):
            async for delta in llm.stream(_judge_prompt(question, answer), temperature=0.0, max_tokens=40):  # type: ignore[arg-type]
                text += delta
    except (ProviderError, TimeoutError) as exc:
        logger.warning("remote judge failed (%s); judging offline", exc or "timed out")
        return None
    covered = parse_covered(text, len(question.key_points))
    if covered is None:
        logger.warning("remote judge answered %r, not the JSON asked for; judging offline", text[:200])
    return covered


class Judge:
    """Decides coverage and verdict; with ``remote`` set, asks that model first."""

    def __init__(self, remote: ChatModel | None = None, timeout_s: float = 8.0) -> None:
        self.remote = remote
        self.timeout_s = timeout_s

    async def judge(self, question: Question, answer: str) -> Judgement:
        dont_know = says_dont_know(answer)
        covered = offline_coverage(question, answer)
        by = "offline"
        # A bare "I don't know" needs no second opinion.
        if self.remote is not None and not (dont_know and not covered and len(answer.split()) <= 10):
            remote = await remote_coverage(self.remote, question, answer, self.timeout_s)
            if remote is not None:
                covered, by = remote, "remote"
        verdict = verdict_for(len(covered), len(question.key_points), dont_know)
        return Judgement(question, answer, covered, verdict, by)
