"""The ``events`` data channel: messages the server sends, and validation of what the client sends."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from server.dialogue.modes import LANGUAGES, PERSONAS

logger = logging.getLogger(__name__)

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


ClientMessage = TextInput | ModeChange | Reset


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
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadMessage("bad_message", "message is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadMessage("bad_message", 'message must be a JSON object with a string "type"')
    kind = data["type"]
    if kind == "text":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadMessage("bad_message", '"text" must be a non-empty string')
        if len(text) > MAX_TEXT_CHARS:
            raise BadMessage("too_large", f"typed text is limited to {MAX_TEXT_CHARS} characters")
        return TextInput(text.strip())
    if kind == "mode":
        mode, language = data.get("mode"), data.get("language")
        if not isinstance(mode, str) or mode not in PERSONAS:
            raise BadMessage("bad_message", f"unknown mode {mode!r}; use one of {', '.join(PERSONAS)}")
        if language is not None and (not isinstance(language, str) or language not in LANGUAGES):
            raise BadMessage("bad_message", f"unknown language {language!r}")
        return ModeChange(mode, language)
    if kind == "reset":
        return Reset()
    raise BadMessage("bad_message", f"unknown message type {kind!r}")
