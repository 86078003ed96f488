"""The call's events, typed: one frozen dataclass per kind of ``docs/protocol.md`` ("Server to client").

Each event keeps the JSON object it came from (``raw``: fields a newer server adds are there) and its arrival
time (``at``, ``time.monotonic()``). A kind this library does not know arrives as ``UnknownEvent``, so a newer
server never breaks an older client. ``Reconnecting`` and ``Lost`` are made by the library itself (the
connection dropped: parley/reconnect.py), not sent by the server.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Event:
    """The fields every event has: ``at`` (monotonic arrival time) and ``raw`` (the JSON object as received)."""

    type: ClassVar[str] = ""
    at: float = field(default=0.0, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Ready(Event):
    """The events channel is open (again after each accepted mode change or reset, and after a reconnect)."""

    type: ClassVar[str] = "ready"
    session_id: str
    mode: str
    language: str


@dataclass(frozen=True, kw_only=True)
class State(Event):
    """``listening`` | ``thinking`` | ``speaking``."""

    type: ClassVar[str] = "state"
    state: str


@dataclass(frozen=True, kw_only=True)
class Speech(Event):
    """The person started (``start``) or stopped (``end``) talking."""

    type: ClassVar[str] = "speech"
    event: str


@dataclass(frozen=True, kw_only=True)
class Transcript(Event):
    """A turn's words (``role``: ``user`` | ``assistant``); an assistant's holds what was actually said. A user's
    with ``continues`` replaces the previous user transcript (the person took their turn up again)."""

    type: ClassVar[str] = "transcript"
    role: str
    text: str
    interrupted: bool = False
    continues: bool = False


@dataclass(frozen=True, kw_only=True)
class Caption(Event):
    """A sentence of the bot's speech as it starts playing (live captions)."""

    type: ClassVar[str] = "caption"
    role: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Interrupted(Event):
    """The person talked over the bot; ``heard``: the words of the reply that were played."""

    type: ClassVar[str] = "interrupted"
    heard: str


@dataclass(frozen=True, kw_only=True)
class Metrics(Event):
    """One turn's timings in milliseconds (``stt_ms`` is None for typed turns)."""

    type: ClassVar[str] = "metrics"
    turn: int
    response_ms: int
    stt_ms: int | None = None
    llm_first_token_ms: int | None = None
    llm_first_sentence_ms: int | None = None
    tts_first_audio_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    """Something the server could not do (``code``: ``bad_message``, ``rate_limited``, ``provider_failed``, ...);
    the call goes on."""

    type: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ScoredQuestion:
    """One interview question on the scorecard; ``verdict``: ``correct`` | ``partly`` | ``wrong`` | ``no_answer``
    | ``skipped`` | ``unanswered``."""

    question: str
    verdict: str
    id: str = ""
    topic: str = ""
    level: str = ""
    covered: tuple[str, ...] = ()
    missed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Scorecard(Event):
    """An interview's scorecard: sent on request and, whatever ends the call, before ``ended``."""

    type: ClassVar[str] = "scorecard"
    questions: tuple[ScoredQuestion, ...]
    asked: int
    answered: int
    totals: Mapping[str, int] = field(default_factory=dict)
    level: str = ""
    study_next: tuple[str, ...] = ()

    @classmethod
    def _convert(cls, fields: dict[str, Any]) -> dict[str, Any]:
        questions = []
        for q in fields.get("questions") or ():
            known = {f.name for f in dataclasses.fields(ScoredQuestion)}
            values: dict[str, Any] = {
                k: tuple(v) if k in ("covered", "missed") else v for k, v in q.items() if k in known
            }
            questions.append(ScoredQuestion(**values))
        return {**fields, "questions": tuple(questions), "study_next": tuple(fields.get("study_next") or ())}


@dataclass(frozen=True, kw_only=True)
class Controls(Event):
    """The call's controls as the server holds them, after each ``mute``, ``hold``, ``push_to_talk`` or ``talk``."""

    type: ClassVar[str] = "controls"
    muted: bool
    held: bool
    push_to_talk: bool
    talking: bool


@dataclass(frozen=True, kw_only=True)
class Ended(Event):
    """The server ends the call; ``reason``: ``requested`` | ``idle`` | ``max_duration`` | ``peer_gone`` |
    ``shutdown`` | ``media_failed``."""

    type: ClassVar[str] = "ended"
    reason: str


@dataclass(frozen=True, kw_only=True)
class Reconnecting(Event):
    """Made by the library: the connection dropped, and the call is being taken up on a new one (POST /resume)."""

    type: ClassVar[str] = "reconnecting"


@dataclass(frozen=True, kw_only=True)
class Lost(Event):
    """Made by the library: the connection dropped and the call could not be taken up again; it is over."""

    type: ClassVar[str] = "lost"
    reason: str


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """A kind this library does not know (a newer server), or a known kind with fields it cannot read: ``type``
    and ``raw`` as received."""

    type: str  # type: ignore[misc]  # an instance field here: the kind is the server's, not the class's


KINDS: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        Ready, State, Speech, Transcript, Caption, Interrupted, Metrics, ErrorEvent, Scorecard, Controls, Ended,
        Reconnecting, Lost,
    )
}  # fmt: skip


def parse(raw: Mapping[str, Any], at: float = 0.0) -> Event:
    """The typed event for one JSON object of the events channel."""
    kind = str(raw.get("type"))
    cls = KINDS.get(kind)
    if cls is None:
        return UnknownEvent(type=kind, at=at, raw=raw)
    names = {f.name for f in dataclasses.fields(cls)} - {"at", "raw"}
    fields = {k: v for k, v in raw.items() if k in names}
    try:
        converted = cls._convert(fields) if hasattr(cls, "_convert") else fields
        return cls(**converted, at=at, raw=raw)
    except (TypeError, ValueError, AttributeError) as exc:  # a field missing or malformed: still delivered
        logger.warning("a %r event this library cannot read (%s): %.200r", kind, exc, raw)
        return UnknownEvent(type=kind, at=at, raw=raw)
