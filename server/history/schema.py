"""The history's tables. A change here goes with a new migration in ``migrations/versions`` (the database of a
running server is upgraded in place at start-up)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CORRECTION_CHARS = 200  # a quoted correct form, at most (longer quotes are not corrections)
PROFILE_CHARS = 160  # "u:" and a call token's user (128 characters), or "p:" and a hash of the page's profile id


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Profile(Base):
    """A person: the page's random profile id (stored hashed: it is their only key) or an app's user."""

    __tablename__ = "profiles"
    id: Mapped[str] = mapped_column(String(PROFILE_CHARS), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "page" or "app"
    display_name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Session(Base):
    """One practice session: a call, or the part of a call after the person switched mode or language."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(40), index=True)
    profile_id: Mapped[str | None] = mapped_column(
        String(PROFILE_CHARS), ForeignKey("profiles.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(24))


class Turn(Base):
    """What one side said, as heard: an interrupted reply holds the words that were played. The latency figures
    (the ``metrics`` event's, ms) are on the reply they belong to."""

    __tablename__ = "turns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(40), ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stt_ms: Mapped[int | None] = mapped_column(Integer)
    llm_first_token_ms: Mapped[int | None] = mapped_column(Integer)
    llm_first_sentence_ms: Mapped[int | None] = mapped_column(Integer)
    tts_first_audio_ms: Mapped[int | None] = mapped_column(Integer)
    response_ms: Mapped[int | None] = mapped_column(Integer)


class Question(Base):
    """An interview question asked in a session, in order, and how its answer was judged."""

    __tablename__ = "interview_questions"
    __table_args__ = (UniqueConstraint("session_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(40), ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0: the first question asked in the session
    question_id: Mapped[str] = mapped_column(String(64))  # the bank's id
    topic: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(16))  # correct, partly, wrong, no_answer, skipped, unanswered
    covered: Mapped[list[str]] = mapped_column(JSON, default=list)
    missed: Mapped[list[str]] = mapped_column(JSON, default=list)


class Scorecard(Base):
    """An interview session's latest scorecard (the ``scorecard`` event's totals)."""

    __tablename__ = "scorecards"
    session_id: Mapped[str] = mapped_column(String(40), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    asked: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(16))
    totals: Mapped[dict[str, Any]] = mapped_column(JSON)
    study_next: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Correction(Base):
    """A correction or suggestion the bot made in language practice: the correct form it quoted, and what the
    person had said. One row each time it was made; ``key`` groups the same phrase (how often it came up), and
    ``revisited_at`` says when a session last opened by revisiting it (server/history/corrections.py)."""

    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_profile_language", "profile_id", "language"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(40), ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    profile_id: Mapped[str | None] = mapped_column(String(PROFILE_CHARS), ForeignKey("profiles.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(CORRECTION_CHARS))  # the phrase, folded: case and punctuation aside
    phrase: Mapped[str] = mapped_column(Text)
    said: Mapped[str] = mapped_column(Text)  # the person's turn it answered ("" where none was heard)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revisited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
