"""A mock interview on the question bank, with a structure the app guarantees, not the model.

Each turn is planned by the app: what the person meant ("wait", "skip", "repeat the question", an answer,
"I don't know"), the verdict on an answer (server/dialogue/judge.py), the verdict's opening words, and the next
question from the bank. The chat model only phrases a sentence or two of feedback between the opener and the
next question, told what was covered and missed; what it writes is filtered (no praise unless the verdict is
correct, no questions of its own, no code). So feedback always comes before the next question, and a wrong
answer is never praised, whatever the small model does.

A plan is computed without changing the interview (a speculative turn may be dropped); ``commit()`` applies
it once the session knows the turn is really over.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from server.config import Settings
from server.dialogue.bank import LEVELS, Bank, Past, Question, default_bank
from server.dialogue.conversation import Conversation
from server.dialogue.judge import Judge, Judgement, Verdict
from server.dialogue.scorecard import Record, scorecard
from server.dialogue.text import SentenceSplitter, looks_like_code
from server.providers.base import ChatMessage, ChatModel, Providers

MAX_FEEDBACK_SENTENCES = 2
FEEDBACK_TEMPERATURE = 0.4  # the feedback restates given facts: a cooler model strays less
FEEDBACK_MAX_TOKENS = 80

SYSTEM_PROMPT = (
    "You are Alex, a senior engineering manager giving feedback in a mock technical interview. You write only "
    "the feedback on the candidate's last answer, speaking to them as you: one or two short, plain sentences "
    "that are spoken aloud, with no lists, no labels, no markdown and no code. The verdict has already been said "
    "and the next question will be asked for you: do not ask any question, do not change the verdict, and do "
    "not praise an answer that was not correct."
)
# One example exchange: the small model copies the shape of earlier replies far better than it follows rules.
EXAMPLE = (
    "Question: Can you tell me how a hash map works, and what a lookup costs?\n"
    'Answer: "it puts the keys in buckets with a hash function"\n'
    "The answer was partly right (already said).\n"
    "It covered: a hash function that turns the key into a bucket index in an array.\n"
    "It missed: constant time lookups on average; collisions, handled by chaining or open addressing.\n"
    "Say briefly what was right, then what was missing. Speak to the candidate as you, in at most two short "
    "sentences, with no question.",
    "You have the hashing into buckets right, but you left out that lookups take constant time on average, "
    "and that collisions are handled by chaining.",
)

OPENERS = {
    Verdict.CORRECT: ("That's right.", "Yes, that's correct.", "Good answer."),
    Verdict.PARTLY: ("Partly right.", "That's partly right."),
    Verdict.WRONG: ("Not quite.", "That's not quite it."),
    Verdict.NO_ANSWER: ("No problem.", "That's okay."),
}
VERDICT_WORDS = {
    Verdict.CORRECT: "correct", Verdict.PARTLY: "partly right", Verdict.WRONG: "wrong",
    Verdict.NO_ANSWER: "no answer (the candidate said they don't know)",
}  # fmt: skip
# The app's own feedback sentence (fallback_feedback) is said right after the opener, while the model writes: a
# person never waits in silence for it (seconds on the embedded model). The model adds to it.
TASKS = {
    Verdict.CORRECT: "Add one short sentence on why their answer works{missed}.",
    Verdict.PARTLY: "Add one short sentence that explains the missing part.",
    Verdict.WRONG: "Do not say that anything was right. Add one or two short sentences that explain the right idea.",
}
NEXT = ("Next question. {q}", "Let's move on. {q}", "Here's the next one. {q}")
DONE = "That was my last question. Thanks for your answers. End the call whenever you like to see your scorecard."

_PRAISE = (
    r"great|excellent|good|well done|perfect|exactly|spot on|nice|impressive|awesome|fantastic|brilliant|"
    r"outstanding|wonderful|superb|terrific|correct|right|absolutely|indeed|bingo"
)
_LEADING_PRAISE = re.compile(
    rf"^(?:\W*(?:that'?s |you'?re |you are |this is |that is |a |very |really |so )*(?:{_PRAISE})"
    r"(?: (?:answer|job|work|point|start|try|explanation|thinking|attempt))?\s*[,.!;:-]+\s*)+",
    re.IGNORECASE,
)
# In feedback on a wrong answer even "correct" is praise, but "the right idea" is not.
_ANY_PRAISE = re.compile(
    r"\b(great|excellent|good|well done|perfect|exactly|spot on|nice|impressive|awesome|fantastic|brilliant|"
    r"outstanding|wonderful|superb|terrific|absolutely|bingo|(?<!the )(?<!the most )(correct|right))\b",
    re.IGNORECASE,
)
# Outside a wrong answer, "right" in "you have the buckets right" is fair: only strong praise is dropped.
STRONG_PRAISE = re.compile(
    r"\b(great|excellent|perfect|exactly|spot on|well done|good job|nice|impressive|awesome|fantastic|brilliant|"
    r"outstanding|wonderful|superb|terrific|that'?s (?:right|correct)|you'?re (?:right|correct)|"
    r"you are (?:right|correct)|is correct)\b",
    re.IGNORECASE,
)
_DENIAL = re.compile(r"^\W*(not quite|that'?s (not|wrong|incorrect)|incorrect|wrong|no\b)", re.IGNORECASE)
_OFF_SCRIPT = re.compile(r"next question|move on|moving on|\bas an ai\b|language model|verdict|candidate", re.I)


class Intent(StrEnum):
    ANSWER = "answer"
    WAIT = "wait"
    REPEAT = "repeat"
    SKIP = "skip"
    UNCLEAR = "unclear"


_FILLER = r"(?:(?:oh|um|uh|ok|okay|so|hmm|yeah|sorry|well|actually)\s+)*"
_SKIP = re.compile(r"\b(skip|next question|pass|move on|another question|different question|something else)\b")
_REPEAT = re.compile(
    r"\b(repeat|say (that|it) again|(what|which) was the question|come again|pardon|"
    r"did ?n'?t (catch|hear|get) (that|it|the question)|(ask|read) (that|it|the question) again|one more time|"
    r"what do you mean|what was that)\b"
)
_WAIT = re.compile(
    rf"^{_FILLER}(wait|hold on|hang on|one (sec|second|moment|minute)|just a (sec|second|moment|minute)|"
    r"(give me|wait|i need) a (sec|second|moment|minute)|let me think)\b"
)


def detect_intent(text: str) -> Intent:
    """What the person meant, from what speech-to-text heard (or they typed). Only short utterances are
    commands: "wait, I know this one: a hash map..." is an answer."""
    plain = re.sub(r"[^\w\s']", " ", text.lower()).strip()
    words = len(plain.split())
    if words <= 10 and _SKIP.search(plain):
        return Intent.SKIP
    if words <= 12 and _REPEAT.search(plain):
        return Intent.REPEAT
    if words <= 7 and _WAIT.search(plain):
        return Intent.WAIT
    return Intent.ANSWER


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


_LABEL = re.compile(
    r"^\W*((missing|missed|covered|feedback|correction)\s*:|(the|your) answer (was|is) (partly right|correct|right|"
    r"wrong|not quite right|not correct)( in that| as| because)?,?)\s*",
    re.IGNORECASE,
)


def clean_feedback(sentence: str, verdict: Verdict) -> str | None:
    """The model's feedback sentence as it may be said, or None to drop it."""
    text = _capitalized(_LABEL.sub("", sentence.strip()))
    if not text or text.endswith("?") or _OFF_SCRIPT.search(text) or looks_like_code(text):
        return None
    if verdict is Verdict.CORRECT:
        return None if _DENIAL.search(text) else text
    text = _LEADING_PRAISE.sub("", text).strip()
    if len(text.split()) < 3:
        return None  # nothing left but a verdict or a praise word
    praise = _ANY_PRAISE if verdict in (Verdict.WRONG, Verdict.NO_ANSWER) else STRONG_PRAISE
    if praise.search(text):
        return None
    return _capitalized(text)


def _join(points: list[str]) -> str:
    return points[0] if len(points) == 1 else ", ".join(points[:-1]) + " and " + points[-1]


def fallback_feedback(judgement: Judgement) -> str:
    """App-made feedback, for when nothing the model wrote could be used (and for "I don't know")."""
    covered, missed = judgement.covered_points, judgement.missed_points
    if judgement.verdict is Verdict.CORRECT:
        return f"You could also mention {missed[0]}." if missed else _capitalized(f"you covered {_join(covered[:2])}.")
    if judgement.verdict is Verdict.PARTLY:
        return f"You mentioned {covered[0]}, but a strong answer would also cover {_join(missed[:2])}."
    return f"A strong answer would mention {_join(missed[:2])}."


@dataclass
class Plan:
    """One turn's reply, decided by the app; ``deltas`` speaks it, ``commit`` applies it to the interview."""

    interview: Interview
    intent: Intent
    opener: str
    judgement: Judgement | None = None
    next_question: Question | None = None  # asked after the feedback (None: no question follows, or repeat)
    closing: str = ""  # said last: the next question with its lead-in, the repeated question, or DONE
    facts: str = ""  # for the model, when it phrases feedback
    bridge: str = ""  # the app's own feedback sentence, said at once; the model's sentences follow it
    model_sentences: int = 0  # feedback sentences the model wrote that were kept (the bench counts them)
    # The interview before commit() (question, records kept, level, asked), for undo().
    before: tuple[Question | None, int, str, set[str]] | None = None

    def messages(self) -> list[ChatMessage]:
        return [*self.interview.prompt(), {"role": "user", "content": self.facts}]

    async def deltas(self, llm: ChatModel, temperature: float, max_tokens: int) -> AsyncIterator[str]:
        yield self.opener + " "
        if self.bridge:
            yield self.bridge + " "  # spoken while the model reads the facts and writes
        if self.judgement is not None:
            said = 0
            if self.facts:
                stream = llm.stream(
                    self.messages(),
                    temperature=min(temperature, FEEDBACK_TEMPERATURE),
                    max_tokens=min(max_tokens, FEEDBACK_MAX_TOKENS),
                )
                splitter = SentenceSplitter(first_clause_min=10**6)  # whole sentences: praise is judged per sentence
                async with aclosing(stream):
                    async for delta in stream:
                        for sentence in splitter.feed(delta):
                            kept = clean_feedback(sentence, self.judgement.verdict)
                            if kept is not None and said < MAX_FEEDBACK_SENTENCES:
                                said += 1
                                yield kept + " "
                        if said >= MAX_FEEDBACK_SENTENCES:
                            break  # closing the stream stops generation
                    else:
                        # What is left unterminated was cut by the token cap: a fragment is not said.
                        rest = splitter.flush()
                        kept = clean_feedback(rest, self.judgement.verdict) if rest.endswith((".", "!")) else None
                        if kept is not None and said < MAX_FEEDBACK_SENTENCES:
                            said += 1
                            yield kept + " "
            self.model_sentences = said
            if said == 0 and not self.bridge:
                yield fallback_feedback(self.judgement) + " "
        if self.closing:
            yield self.closing

    def commit(self) -> None:
        interview = self.interview
        self.before = (interview.current, len(interview.records), interview.level, set(interview.asked))
        interview._apply(self)

    def undo(self) -> None:
        """The person took the turn up again: the interview is as it was before this plan was committed."""
        if self.before is None:
            return
        interview = self.interview
        interview.current, kept, interview.level, interview.asked = self.before
        del interview.records[kept:]


class Interview:
    """One interview: the question on the table, the answers so far, and the level it has reached."""

    system_prompt = SYSTEM_PROMPT

    def __init__(self, bank: Bank, judge: Judge, rng: random.Random | None = None, level: str = "mid") -> None:
        self.bank = bank
        self.judge = judge
        self.rng = rng or random.Random()
        self.level = level
        self.current: Question | None = None
        self.records: list[Record] = []
        self.asked: set[str] = set()
        self.past: Past | None = None  # the person's earlier interviews, once read (continue_from)

    def continue_from(self, past: Past) -> None:
        """Picks up where the person's earlier interviews left off: their last level (unless this one has moved
        already), and the questions they were asked and the topics they missed, for every pick from now on. It
        may come after the first question was asked: the greeting waits for the history only briefly."""
        self.past = past
        if not self.records and past.level in LEVELS:
            self.level = past.level

    def carried(self) -> Past:
        """What an interview started over in the same call continues from: this one's past, then this one (its
        level, its questions, and each topic's latest verdict)."""
        past = self.past or Past()
        mine = [r.question.id for r in self.records] + ([self.current.id] if self.current is not None else [])
        weak = set(past.weak_topics)
        for record in self.records:  # in order: a topic's latest answer decides
            (weak.discard if record.status == "correct" else weak.add)(record.question.topic)
        return Past(
            level=self.level if self.records else past.level,
            asked=tuple(q for q in past.asked if q not in mine) + tuple(mine),
            weak_topics=frozenset(weak),
        )

    def prompt(self) -> list[ChatMessage]:
        """What every feedback request starts with: the same prefix each time, so the embedded model's KV
        cache keeps it (the session warms it while the greeting plays)."""
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": EXAMPLE[0]},
            {"role": "assistant", "content": EXAMPLE[1]},
        ]

    def prime(self, conversation: Conversation) -> None:
        """Starts ``conversation`` with the feedback prompt, so warming it warms what the turns will use."""
        conversation.reset(self.system_prompt)
        conversation.add_user(EXAMPLE[0])
        conversation.add_assistant(EXAMPLE[1])

    # -- the opening question ---------------------------------------------------------------------------
    def first_question(self) -> Question:
        question = self._pick()
        assert question is not None, "the question bank is empty"
        self._ask(question)
        return question

    def reopen(self) -> Question | None:
        """The opening question picked again (the person's past has come before it was said); kept once answered."""
        if self.records or self.current is None:
            return self.current
        self.asked.discard(self.current.id)
        return self.first_question()

    def _pick(self) -> Question | None:
        last = self.current.topic if self.current else None
        return self.bank.pick(self.rng, self.level, self.asked, last, self.past)

    def _ask(self, question: Question | None) -> None:
        self.current = question
        if question is not None:
            self.asked.add(question.id)

    # -- planning a turn ----------------------------------------------------------------------------------
    async def plan(self, text: str) -> Plan:
        current = self.current
        if current is None:
            return Plan(self, Intent.ANSWER, DONE)
        intent = detect_intent(text)
        if intent is Intent.WAIT:
            return Plan(self, intent, self.rng.choice(("Sure, take your time.", "Of course, no rush.")))
        if intent is Intent.REPEAT:
            return Plan(self, intent, "Sure, here it is again.", closing=current.text)
        if intent is Intent.SKIP:
            return self._moving_on(Plan(self, intent, "No problem, let's skip that one."), current)
        judgement = await self.judge.judge(current, text)
        if judgement.verdict is Verdict.WRONG and len(text.split()) <= 2:
            # "Yes", "okay", a misheard word: ask again rather than fail them on it.
            return Plan(self, Intent.UNCLEAR, "Could you say a bit more?", closing=current.text)
        plan = Plan(self, Intent.ANSWER, self.rng.choice(OPENERS[judgement.verdict]), judgement=judgement)
        if judgement.verdict is not Verdict.NO_ANSWER:
            plan.bridge = fallback_feedback(judgement)
            plan.facts = self._facts(judgement, plan.bridge)
        return self._moving_on(plan, current, judgement.verdict)

    def _moving_on(self, plan: Plan, current: Question, verdict: Verdict | None = None) -> Plan:
        level = self._next_level(verdict)
        asked = self.asked | {current.id}
        plan.next_question = self.bank.pick(self.rng, level, asked, current.topic, self.past)
        if plan.next_question is None:
            plan.closing = DONE
        else:
            plan.closing = self.rng.choice(NEXT).format(q=plan.next_question.text)
        return plan

    def _next_level(self, verdict: Verdict | None) -> str:
        """Harder after a correct answer, easier after a wrong one or none."""
        at = LEVELS.index(self.level)
        if verdict is Verdict.CORRECT:
            at = min(at + 1, len(LEVELS) - 1)
        elif verdict in (Verdict.WRONG, Verdict.NO_ANSWER):
            at = max(at - 1, 0)
        return LEVELS[at]

    def _facts(self, judgement: Judgement, bridge: str) -> str:
        covered, missed = judgement.covered_points, judgement.missed_points
        also = f", or what a complete answer also covers: {missed[0]}" if missed else ""
        task = TASKS[judgement.verdict].format(missed=also)
        return (
            f"Question: {judgement.question.text}\n"
            f'Answer: "{judgement.answer}"\n'
            f"The answer was {VERDICT_WORDS[judgement.verdict]} (already said).\n"
            f"It covered: {'; '.join(covered) if covered else 'nothing'}.\n"
            f"It missed: {'; '.join(missed) if missed else 'nothing'}.\n"
            f'You have already said: "{bridge}"\n'
            f"{task} Do not repeat what you said. Speak to the candidate as you, with no question."
        )

    def _apply(self, plan: Plan) -> None:
        current = self.current
        if current is None or plan.intent in (Intent.WAIT, Intent.REPEAT, Intent.UNCLEAR):
            return
        if plan.intent is Intent.SKIP:
            self.records.append(Record(current, "skipped", [], [kp.point for kp in current.key_points]))
        elif plan.judgement is not None:
            j = plan.judgement
            self.records.append(Record(current, j.verdict.value, j.covered_points, j.missed_points))
            self.level = self._next_level(j.verdict)
        self._ask(plan.next_question)

    # -- the scorecard ------------------------------------------------------------------------------------
    def scorecard(self) -> dict[str, Any]:
        """The ``scorecard`` event's fields (server/dialogue/scorecard.py)."""
        return scorecard(self.records, self.current, self.bank, self.level)


def interview_for(
    mode: str, language: str, settings: Settings, providers: Providers, rng: random.Random
) -> Interview | None:
    """The bank-grounded interview for a call, or None: outside interview mode, and in other languages than
    English (the bank is English; there the model interviews on its own, as before)."""
    if mode != "interview" or language != "en":
        return None
    remote = settings.judge == "remote" or (settings.judge == "auto" and settings.provider("llm") == "openai")
    judge = Judge(providers.llm if remote else None, timeout_s=min(settings.llm_timeout_s, 10.0))
    return Interview(default_bank(), judge, rng)
