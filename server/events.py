"""The ``events`` data channel: messages the server sends, and validation of what the client sends."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiortc import RTCDataChannel

from server import safe_json
from server.dialogue.modes import LANGUAGES, PERSONAS
from server.protocol import CLIENT_MESSAGES, CONTROL_FIELDS, ModeMessage, ServerEvent, TextMessage

logger = logging.getLogger(__name__)

UNSENT_EVENTS = 64  # events kept until the channel opens (bounded: an offer may have no channel)
MAX_MESSAGE_BYTES = 16 * 1024
MAX_TEXT_CHARS = 2000


class BadMessage(ValueError):
    """A client message we cannot act on; ``code`` goes into the ``error`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TextInput:
    text: str


@dataclass(frozen=True)
class ModeChange:
    mode: str
    language: str | None


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class Command:
    """``end``: the person hangs up, and the server sends what it owes (the interview scorecard) before it ends
    the call; ``scorecard``: the interview scorecard, now."""

    name: str


@dataclass(frozen=True)
class Control:
    """A call control (``mute``, ``hold``, ``push_to_talk``, ``talk``) switched on or off."""

    name: str
    on: bool


ClientMessage = TextInput | ModeChange | Reset | Command | Control


def parse_client_message(raw: str | bytes) -> ClientMessage:
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise BadMessage("too_large", f"message of {size} bytes is over the {MAX_MESSAGE_BYTES} byte limit")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError as exc:
            raise BadMessage("bad_message", "message is not valid UTF-8") from exc
    try:
        data: Any = safe_json.loads(raw)
    except safe_json.BadJson as exc:
        raise BadMessage("bad_message", f"message is {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadMessage("bad_message", 'message must be a JSON object with a string "type"')
    kind = data["type"]
    if kind not in CLIENT_MESSAGES:
        raise BadMessage("bad_message", f"unknown message type {kind!r}")
    if kind == "text":
        text = cast(TextMessage, data).get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadMessage("bad_message", '"text" must be a non-empty string')
        if len(text) > MAX_TEXT_CHARS:
            raise BadMessage("too_large", f"typed text is limited to {MAX_TEXT_CHARS} characters")
        return TextInput(text.strip())
    if kind == "mode":
        mode, language = cast(ModeMessage, data).get("mode"), data.get("language")
        if not isinstance(mode, str) or mode not in PERSONAS:
            raise BadMessage("bad_message", f"unknown mode {mode!r}; use one of {', '.join(PERSONAS)}")
        if language is not None and (not isinstance(language, str) or language not in LANGUAGES):
            raise BadMessage("bad_message", f"unknown language {language!r}")
        return ModeChange(mode, language)
    if kind == "reset":
        return Reset()
    if kind in CONTROL_FIELDS:
        field = CONTROL_FIELDS[kind]
        on = data.get(field)
        if not isinstance(on, bool):
            raise BadMessage("bad_message", f'"{field}" must be true or false')
        return Control(kind, on)
    return Command(kind)  # end, scorecard


class EventChannel:
    """The server's end of the ``events`` channel. A call can connect, and its greeting start, before the
    channel opens: what is said meanwhile is kept and sent right after the opening message."""

    def __init__(self) -> None:
        self._channel: RTCDataChannel | None = None
        self._unsent: deque[str] = deque(maxlen=UNSENT_EVENTS)

    def attach(self, channel: RTCDataChannel, on_open: Callable[[], None]) -> None:
        """The call's channel (a new one replaces the last, on a reconnected call)."""
        if self._channel is not None and self._channel is not channel:
            self._channel.remove_all_listeners()
        self._channel = channel
        if channel.readyState == "open":
            on_open()
        else:
            channel.on("open", on_open)

    def detach(self) -> None:
        """The call has ended: the channel (which aiortc may keep a while, retransmitting) lets go of the call's
        handlers, and nothing more is sent or kept for it."""
        if self._channel is not None:
            self._channel.remove_all_listeners()
        self._channel = None
        self._unsent.clear()

    @property
    def is_open(self) -> bool:
        return self._channel is not None and self._channel.readyState == "open"

    def send(self, event: ServerEvent) -> None:
        message = json.dumps(event)
        if self.is_open:
            self._channel.send(message)  # type: ignore[union-attr]
        else:
            self._unsent.append(message)

    def open_with(self, event: ServerEvent) -> None:
        """Sends ``event`` first, then whatever waited for the channel (no-op while it is not open)."""
        if not self.is_open:
            return
        self._channel.send(json.dumps(event))  # type: ignore[union-attr]
        while self._unsent:
            self._channel.send(self._unsent.popleft())  # type: ignore[union-attr]
