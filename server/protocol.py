"""The ``events`` data channel's messages, typed: what the server sends and what a client may send.

docs/protocol.md documents them with an example of each; tests/test_protocol_doc.py checks the two agree.
Extend the protocol, never break it: clients (the call page, the Python library parley/, apps that embed us)
rely on every field name and meaning here.
"""

# No ``from __future__ import annotations``: TypedDict needs real annotations to tell NotRequired keys apart.
from typing import Any, Literal, NotRequired, TypedDict, get_args, get_type_hints

State = Literal["listening", "thinking", "speaking"]
ErrorCode = Literal["bad_message", "too_large", "rate_limited", "provider_failed", "internal", "not_allowed"]
EndReason = Literal["idle", "max_duration", "peer_gone", "shutdown", "requested", "media_failed"]


# -- server to client -----------------------------------------------------------------------------------------
class Ready(TypedDict):
    """When the channel opens, and after each accepted ``mode`` or ``reset``."""

    type: Literal["ready"]
    session_id: str
    mode: str
    language: str


class StateChange(TypedDict):
    type: Literal["state"]
    state: State


class Speech(TypedDict):
    """The person started or stopped talking."""

    type: Literal["speech"]
    event: Literal["start", "end"]


class Transcript(TypedDict):
    """The assistant's holds what was actually sent (after a barge-in, what was heard). A user's with
    ``continues`` is the whole of a turn the person took up again just after the bot began to answer it: it
    replaces their previous transcript, and the reply cut in between is gone from the conversation."""

    type: Literal["transcript"]
    role: Literal["user", "assistant"]
    text: str
    interrupted: bool
    continues: NotRequired[bool]


class Caption(TypedDict):
    """A sentence of the bot's speech as it starts playing (live captions)."""

    type: Literal["caption"]
    role: Literal["assistant"]
    text: str


class Interrupted(TypedDict):
    type: Literal["interrupted"]
    heard: str


class Metrics(TypedDict):
    """Once per turn, when its first reply frame is sent; ``response_ms`` runs from the end of the person's speech
    as the VAD saw it (the hang-over included); ``stt_ms`` is null for typed turns."""

    type: Literal["metrics"]
    turn: int
    stt_ms: int | None
    llm_first_token_ms: int | None
    llm_first_sentence_ms: int | None
    tts_first_audio_ms: int | None
    response_ms: int


class Error(TypedDict):
    type: Literal["error"]
    code: ErrorCode
    message: str


class Scorecard(TypedDict):
    """An interview's scorecard (server/dialogue/scorecard.py builds the fields)."""

    type: Literal["scorecard"]
    questions: list[dict[str, Any]]
    asked: int
    answered: int
    totals: dict[str, int]
    level: str
    study_next: list[str]


class Controls(TypedDict):
    """The call's controls as the server holds them, after each control message."""

    type: Literal["controls"]
    muted: bool
    held: bool
    push_to_talk: bool
    talking: bool


class Ended(TypedDict):
    """Just before the server ends the call."""

    type: Literal["ended"]
    reason: EndReason


ServerEvent = (
    Ready | StateChange | Speech | Transcript | Caption | Interrupted | Metrics | Error | Scorecard | Controls | Ended
)


# -- client to server -----------------------------------------------------------------------------------------
class TextMessage(TypedDict):
    """Typed input, answered like speech; it interrupts the bot if it is speaking."""

    type: Literal["text"]
    text: str


class ModeMessage(TypedDict):
    """Switch mode or language mid-call (starts over)."""

    type: Literal["mode"]
    mode: str
    language: NotRequired[str | None]


class ResetMessage(TypedDict):
    type: Literal["reset"]


class EndMessage(TypedDict):
    """Hang up: the server sends what it owes (an interview's scorecard), then ``ended``."""

    type: Literal["end"]


class ScorecardMessage(TypedDict):
    type: Literal["scorecard"]


class MuteMessage(TypedDict):
    """The person's microphone is muted: the server hears nothing from them, and the idle limit waits."""

    type: Literal["mute"]
    muted: bool


class HoldMessage(TypedDict):
    """Give me a moment: the bot is quiet, no silence ends the person's turn, and the idle limit waits."""

    type: Literal["hold"]
    held: bool


class PushToTalkMessage(TypedDict):
    """Push-to-talk on or off: while on, the person is heard only while the talk button is down."""

    type: Literal["push_to_talk"]
    enabled: bool


class TalkMessage(TypedDict):
    """Push-to-talk's button: down cuts the bot and starts the turn; up ends it at once."""

    type: Literal["talk"]
    pressed: bool


CONTROL_FIELDS = {"mute": "muted", "hold": "held", "push_to_talk": "enabled", "talk": "pressed"}

ClientWireMessage = (
    TextMessage | ModeMessage | ResetMessage | EndMessage | ScorecardMessage
    | MuteMessage | HoldMessage | PushToTalkMessage | TalkMessage
)  # fmt: skip


def kinds(*types: type) -> dict[str, type]:
    """``type`` value -> the TypedDict."""
    return {get_args(get_type_hints(t)["type"])[0]: t for t in types}


SERVER_EVENTS = kinds(
    Ready, StateChange, Speech, Transcript, Caption, Interrupted, Metrics, Error, Scorecard, Controls, Ended
)
CLIENT_MESSAGES = kinds(
    TextMessage, ModeMessage, ResetMessage, EndMessage, ScorecardMessage,
    MuteMessage, HoldMessage, PushToTalkMessage, TalkMessage,
)  # fmt: skip
