"""Personas as data: each mode's prompt, greeting, voice, sampling and turn-taking settings.

What a persona says in each language (greetings, example exchanges, apologies) comes from the language table,
``server/languages.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from textwrap import shorten

from server.languages import DEFAULT_LANGUAGE, LANGUAGES

SPOKEN_RULES = (
    "Your words are spoken aloud by a voice: write plain sentences only, no lists, no markdown, no code, "
    "no emoji. Keep each reply to two or three short sentences."
)
INTERRUPTION_RULE = (
    "A message that starts with [INTERRUPTED] means the person talked over you and you stopped mid-sentence: "
    "do not repeat yourself, react briefly to what they said."
)

# Language practice's follow-up on a correction of an earlier session (server/history/corrections.py).
REVISIT_NOTE = (
    ' This session opens by revisiting a correction from last time: you taught them to say "{phrase}", and your '
    "greeting asked them to use it. When they do, tell them briefly whether they got it right, and correct it "
    "gently again if not."
)
REVISIT_SAID = ' Last time they had said: "{said}".'
REVISIT_SAID_CHARS = 200  # a long turn's beginning: the prompt's room is the conversation's


@dataclass(frozen=True)
class Revisit:
    """A correction an earlier session made, that this one opens with: the correct form, what the person had said,
    and the history's key for it (server/history/corrections.py)."""

    phrase: str
    said: str = ""
    key: str = ""


@dataclass(frozen=True)
class Persona:
    mode: str
    prompt: str  # may use {language}
    greetings: tuple[str, ...]  # one is chosen per call; may use {question}
    openers: tuple[str, ...] = ("",)  # first questions, for modes that lead
    temperature: float = 0.7  # for the embedded 1.5B model, which rambles when hotter
    max_tokens: int = 120
    remote_temperature: float = 0.9  # for a remote model, as the seed used OpenAI
    remote_max_tokens: int = 150
    instructions: str = ""  # speaking style, for engines that take directions
    speaking_rate: float = 1.0  # for engines that take a speed (the embedded voices); below 1 is slower
    localized_greetings: tuple[tuple[str, str], ...] = ()  # (language, greeting), over ``greetings``

    examples: tuple[tuple[str, str], ...] = ()  # (language, an example exchange in it), added to the prompt
    # (language, the opening line that revisits a correction of an earlier session: {phrase}), over the greetings
    revisit_greetings: tuple[tuple[str, str], ...] = ()

    def revisits(self, language: str) -> bool:
        return language in dict(self.revisit_greetings)

    def system_prompt(self, language: str, revisit: Revisit | None = None) -> str:
        """``revisit``: the correction this session opens with (its greeting quotes it), so the model follows up."""
        name = LANGUAGES[language].name
        example = dict(self.examples).get(language, "")
        example = f" Example. {example}" if example else ""
        # Last, after the rules every call shares: a cached prompt of this mode and language is read up to here.
        follow_up = REVISIT_NOTE.format(phrase=revisit.phrase) if revisit is not None else ""
        if revisit is not None and revisit.said:
            follow_up += REVISIT_SAID.format(said=shorten(revisit.said, REVISIT_SAID_CHARS, placeholder="..."))
        return f"{self.prompt.format(language=name)}{example} {SPOKEN_RULES} {INTERRUPTION_RULE}{follow_up}"

    def greeting(
        self, rng: random.Random, language: str, question: str | None = None, revisit: Revisit | None = None
    ) -> str:
        """``question``: the first question, where the app chose it (the interview's question bank); ``revisit``:
        a correction of an earlier session to open with, where this persona revisits them in ``language``."""
        if revisit is not None and self.revisits(language):
            return dict(self.revisit_greetings)[language].format(phrase=revisit.phrase)
        localized = dict(self.localized_greetings)
        if language in localized:
            return localized[language]
        return rng.choice(self.greetings).format(question=question or rng.choice(self.openers))


INTERVIEW = Persona(
    mode="interview",
    prompt=(
        "You are Alex, a senior engineering manager running a friendly mock technical interview in "
        "{language}. After each answer, first react to it in one sentence: say plainly what was right and "
        "what was missing or wrong, and never praise a wrong answer. Then ask the next question, one question "
        "at a time, on system design, coding concepts, databases, cloud or behaviour. "
        "Example. Candidate: A hash map stores keys in an array of buckets, so lookups are fast. "
        "Alex: Right about the buckets, though you missed that hashing gives constant time on average and "
        "collisions need handling. Next, how would you design a rate limiter for an API?"
    ),
    greetings=(
        "Hi, I'm Alex, an engineering manager. Thanks for doing this mock interview. Let's start. {question}",
        "Hello, I'm Alex. Great to meet you, let's jump right in. {question}",
    ),
    openers=(
        "Can you tell me how a hash map works, and what a lookup costs?",
        "What is the difference between a process and a thread?",
        "How would you design a URL shortener?",
        "Tell me about a time you disagreed with a teammate, and how you handled it.",
    ),
    temperature=0.7,
    max_tokens=120,
    remote_max_tokens=300,
    instructions="Speak like a warm, encouraging interviewer: clear, calm, professional.",
)

LANGUAGE_PRACTICE = Persona(
    mode="language",
    prompt=(
        "You are a patient native {language} speaker helping someone practise speaking {language}. Reply only "
        "in {language}, in simple everyday words, even when they use another language. When they make a "
        "mistake, correct it gently in passing, then keep the conversation going with a simple question. "
        "You have your own opinions and likes; never say you are an AI or an assistant."
    ),
    greetings=(LANGUAGES[DEFAULT_LANGUAGE].practice_greeting,),
    localized_greetings=tuple((code, language.practice_greeting) for code, language in LANGUAGES.items()),
    examples=tuple((code, language.correction_example) for code, language in LANGUAGES.items()),
    revisit_greetings=tuple((code, language.revisit_greeting) for code, language in LANGUAGES.items()),
    temperature=0.6,  # cooler than chat: fewer drifts into another language
    max_tokens=100,
    instructions="Speak slowly and clearly, like a friendly teacher.",
    speaking_rate=0.85,
)

CHAT = Persona(
    mode="chat",
    prompt=(
        "You are a smart, casual colleague chatting during a coffee break. Match the person's energy: short "
        "and playful when they are, thoughtful when they are. Be curious and natural, and reply in the "
        "language the person uses ({language} unless they switch). You have your own opinions; never say you "
        "are an AI or an assistant."
    ),
    greetings=("Hey! Good to see you. What's on your mind today?", "Hi there! How's your day going?"),
    temperature=0.8,
    max_tokens=100,
    instructions="Speak casually and warmly, like a friend.",
)

PERSONAS = {p.mode: p for p in (INTERVIEW, LANGUAGE_PRACTICE, CHAT)}
DEFAULT_MODE = "interview"

# Said when a stage fails mid-turn, where speech synthesis still works.
APOLOGIES = {code: language.apology for code, language in LANGUAGES.items()}
