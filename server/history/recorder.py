"""One call's record: the events the call sends its client (``Call.on_event``), turned into the writer's writes.
Nothing here waits or raises: a write is queued, and a bug here is logged, never the call's problem."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from server.history.corrections import extract
from server.history.store import LATENCIES
from server.history.writer import Writer
from server.protocol import Scorecard, ServerEvent

logger = logging.getLogger(__name__)


def profile_key(page_profile: str | None, user: str | None) -> tuple[str, str] | None:
    """(stored id, kind) of whoever a call or a request is for: a call token's user wins over the page's profile
    id, which is kept only as a hash (it is the person's only key to their records)."""
    if user is not None:
        return f"u:{user}", "app"
    if page_profile is not None:
        return f"p:{hashlib.sha256(page_profile.encode()).hexdigest()[:40]}", "page"
    return None


class Recorder:
    """A call's sessions: the first starts with the call, a mode change or a reset starts another (the greeting,
    and an interview's questions, start over too)."""

    def __init__(
        self,
        writer: Writer,
        call_id: str,
        profile: tuple[str, str] | None,
        display_name: str | None,
        mode: str,
        language: str,
        scorecard: Callable[[], Scorecard | None],
    ) -> None:
        self._writer = writer
        self.call_id = call_id
        self.profile_id = profile[0] if profile else None
        self._scorecard = scorecard
        if profile is not None:
            writer.submit("touch_profile", profile_id=profile[0], kind=profile[1], display_name=display_name,
                          at=self._now())  # fmt: skip
        self._parts = 0
        self._ended = False
        self._begin(mode, language)

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def _begin(self, mode: str, language: str) -> None:
        self._parts += 1
        self.session_id = self.call_id if self._parts == 1 else f"{self.call_id}.{self._parts}"
        self.mode, self.language = mode, language
        self._said: str | None = None  # language practice: the person's turn the next reply answers
        self._seq = 0
        self._last_user_seq: int | None = None
        self._latency: dict[str, Any] | None = None  # the metrics event comes before its reply's transcript
        self._ended = False
        self._writer.submit("start_session", session_id=self.session_id, call_id=self.call_id,
                            profile_id=self.profile_id, mode=mode, language=language, at=self._now())  # fmt: skip

    # -- the call's hooks -------------------------------------------------------------------------------------
    def event(self, event: ServerEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a bug here must not reach the call's send()
            logger.exception("call %s: recording a %s event failed", self.call_id, event.get("type"))

    def restart(self, mode: str, language: str) -> None:
        try:
            self._end("restarted")
            self._begin(mode, language)
        except Exception:
            logger.exception("call %s: recording a restart failed", self.call_id)

    def closed(self) -> None:
        """The call is closed; one that ended without an ``ended`` event (it never connected) says so."""
        try:
            self._end("closed")
        except Exception:
            logger.exception("call %s: recording the close failed", self.call_id)

    # -- events -----------------------------------------------------------------------------------------------
    def _on_event(self, event: ServerEvent) -> None:
        kind = event["type"]
        if kind == "transcript":
            self._transcript(event)  # type: ignore[arg-type]
        elif kind == "metrics":
            self._latency = {name: event.get(name) for name in LATENCIES}
        elif kind == "scorecard":
            self._save_interview(event)  # type: ignore[arg-type]
        elif kind == "ended":
            self._end(event["reason"])  # type: ignore[typeddict-item]

    def _transcript(self, event: dict[str, Any]) -> None:
        if self._ended:
            return
        role = event["role"]
        if role == "user" and event.get("continues") and self._last_user_seq is not None:
            # The whole of a turn the person took up again: it replaces their last one and the reply cut after it.
            self._writer.submit("take_back_turns", session_id=self.session_id, from_seq=self._last_user_seq)
            self._seq = self._last_user_seq - 1
        self._seq += 1
        latency = None
        if role == "user":
            self._last_user_seq = self._seq
            self._said = event["text"]
        else:
            latency, self._latency = self._latency, None
        self._writer.submit("add_turn", session_id=self.session_id, seq=self._seq, role=role, text=event["text"],
                            interrupted=bool(event["interrupted"]), at=self._now(), latency=latency)  # fmt: skip
        if role == "assistant" and self.mode == "interview":
            # The answer before this reply has been judged by now: the questions so far are kept as the call goes.
            card = self._scorecard()
            if card is not None:
                self._save_interview(card)
        if role == "assistant" and self.mode == "language" and self._said is not None:
            self._keep_corrections(event["text"], self._said)

    def _keep_corrections(self, reply: str, said: str) -> None:
        """The corrections a reply made (as heard: a cut-off one keeps those said before the cut), for the next
        session in this language to revisit (server/history/corrections.py). Replies to a turn only: the greeting,
        which may quote one of them, is not a correction."""
        for phrase in extract(reply, self.language):
            self._writer.submit("add_correction", session_id=self.session_id, profile_id=self.profile_id,
                                language=self.language, phrase=phrase, said=said, at=self._now())  # fmt: skip

    def _save_interview(self, card: dict[str, Any]) -> None:
        if self._ended:
            return
        questions = card["questions"]  # the most recent ones (server/dialogue/scorecard.py)
        first = card["asked"] - len(questions)
        self._writer.submit("save_questions", session_id=self.session_id, first_position=first, questions=questions)
        self._writer.submit("save_scorecard", session_id=self.session_id, card=card, at=self._now())

    def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._writer.submit("end_session", session_id=self.session_id, reason=reason, at=self._now())
