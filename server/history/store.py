"""Reads and writes of the history, each one short transaction. Writes come from the writer's one task
(``writer.py``), in the order the call's events happened; reads from the API. Records come out as plain dicts
(the API's JSON and the exports are made from them)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from server.history import corrections
from server.history.schema import Profile, Question, Scorecard, Session, Turn

logger = logging.getLogger(__name__)

LATENCIES = ("stt_ms", "llm_first_token_ms", "llm_first_sentence_ms", "tts_first_audio_ms", "response_ms")
MAX_LIST = 200  # sessions in one listing page


def _utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back the naive UTC time it was given)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- writes (the writer's task) ---------------------------------------------------------------------------
    async def touch_profile(self, profile_id: str, kind: str, display_name: str | None, at: datetime) -> None:
        """The profile exists, seen now, under the display name given (one left out keeps the last)."""
        for _ in range(2):  # two workers may create the same profile at once: the second updates it
            try:
                async with self._sessions.begin() as db:
                    profile = await db.get(Profile, profile_id)
                    if profile is None:
                        db.add(Profile(id=profile_id, kind=kind, display_name=display_name, created_at=at,
                                       last_seen_at=at))  # fmt: skip
                    else:
                        profile.last_seen_at = at
                        profile.display_name = display_name or profile.display_name
                return
            except IntegrityError:
                continue

    async def start_session(
        self, session_id: str, call_id: str, profile_id: str | None, mode: str, language: str, at: datetime
    ) -> None:
        async with self._sessions.begin() as db:
            db.add(Session(id=session_id, call_id=call_id, profile_id=profile_id, mode=mode, language=language,
                           started_at=at))  # fmt: skip

    async def add_turn(
        self, session_id: str, seq: int, role: str, text: str, interrupted: bool, at: datetime,
        latency: dict[str, int | None] | None = None,
    ) -> None:  # fmt: skip
        figures = {name: (latency or {}).get(name) for name in LATENCIES}
        async with self._sessions.begin() as db:
            db.add(Turn(session_id=session_id, seq=seq, role=role, text=text, interrupted=interrupted, at=at,
                        **figures))  # fmt: skip

    async def take_back_turns(self, session_id: str, from_seq: int) -> None:
        """The person took up their last turn again: it, and the reply cut after it, are replaced."""
        async with self._sessions.begin() as db:
            await db.execute(delete(Turn).where(Turn.session_id == session_id, Turn.seq >= from_seq))

    async def save_questions(self, session_id: str, first_position: int, questions: list[dict[str, Any]]) -> None:
        """The interview's questions from ``first_position`` on, as judged so far (earlier ones do not change)."""
        async with self._sessions.begin() as db:
            await db.execute(
                delete(Question).where(Question.session_id == session_id, Question.position >= first_position)
            )
            for offset, q in enumerate(questions):
                db.add(Question(
                    session_id=session_id, position=first_position + offset, question_id=str(q["id"]),
                    topic=q["topic"], level=q["level"], question=q["question"], verdict=q["verdict"],
                    covered=list(q.get("covered", [])), missed=list(q.get("missed", [])),
                ))  # fmt: skip

    async def save_scorecard(self, session_id: str, card: dict[str, Any], at: datetime) -> None:
        async with self._sessions.begin() as db:
            await db.merge(Scorecard(
                session_id=session_id, asked=card["asked"], answered=card["answered"], level=card["level"],
                totals=dict(card["totals"]), study_next=list(card["study_next"]), updated_at=at,
            ))  # fmt: skip

    async def end_session(self, session_id: str, reason: str, at: datetime) -> None:
        async with self._sessions.begin() as db:
            session = await db.get(Session, session_id)
            if session is not None and session.ended_at is None:
                session.ended_at, session.end_reason = at, reason

    # -- reads (the API) --------------------------------------------------------------------------------------
    async def list_sessions(
        self, profile_id: str | None, everyone: bool = False, limit: int = MAX_LIST, before: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Newest first: one profile's sessions, or (``everyone``) all of them."""
        turns = select(Turn.session_id, func.count().label("n")).group_by(Turn.session_id).subquery()
        query = select(Session, func.coalesce(turns.c.n, 0)).outerjoin(turns, turns.c.session_id == Session.id)
        if not everyone:
            query = query.where(Session.profile_id == profile_id)
        if before is not None:
            query = query.where(Session.started_at < before)
        query = query.order_by(Session.started_at.desc(), Session.id).limit(min(limit, MAX_LIST))
        async with self._sessions() as db:
            rows = (await db.execute(query)).all()
        return [self._summary(session) | {"turns": count} for session, count in rows]

    async def owner(self, session_id: str) -> tuple[bool, str | None]:
        """(whether the session exists, its profile)."""
        async with self._sessions() as db:
            session = await db.get(Session, session_id)
        return (False, None) if session is None else (True, session.profile_id)

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """A session with its turns, its questions and its scorecard."""
        async with self._sessions() as db:
            session = await db.get(Session, session_id)
            if session is None:
                return None
            turns = (await db.scalars(select(Turn).where(Turn.session_id == session_id).order_by(Turn.seq))).all()
            questions = (
                await db.scalars(select(Question).where(Question.session_id == session_id).order_by(Question.position))
            ).all()
            card = await db.get(Scorecard, session_id)
        said_right = await corrections.of_session(self._sessions, session_id)
        return self._summary(session) | {
            "turns": [
                {"role": t.role, "text": t.text, "interrupted": t.interrupted, "at": _utc(t.at),
                 **{name: getattr(t, name) for name in LATENCIES if getattr(t, name) is not None}}
                for t in turns
            ],
            "questions": [
                {"id": q.question_id, "topic": q.topic, "level": q.level, "question": q.question,
                 "verdict": q.verdict, "covered": q.covered, "missed": q.missed}
                for q in questions
            ],
            "scorecard": None if card is None else {
                "asked": card.asked, "answered": card.answered, "level": card.level, "totals": card.totals,
                "study_next": card.study_next,
            },
            "corrections": said_right,
        }  # fmt: skip

    async def sessions_of(self, profile_id: str | None, everyone: bool = False) -> list[dict[str, Any]]:
        """Every session of a profile (or of everyone), whole, oldest first: an export."""
        query = select(Session.id).order_by(Session.started_at, Session.id)
        if not everyone:
            query = query.where(Session.profile_id == profile_id)
        async with self._sessions() as db:
            ids = (await db.scalars(query)).all()
        return [s for s in [await self.get_session(i) for i in ids] if s is not None]

    async def profile(self, profile_id: str) -> dict[str, Any] | None:
        async with self._sessions() as db:
            profile = await db.get(Profile, profile_id)
        if profile is None:
            return None
        return {"display_name": profile.display_name, "created_at": _utc(profile.created_at),
                "last_seen_at": _utc(profile.last_seen_at)}  # fmt: skip

    @staticmethod
    def _summary(session: Session) -> dict[str, Any]:
        return {
            "id": session.id, "call_id": session.call_id, "profile": session.profile_id, "mode": session.mode,
            "language": session.language, "started_at": _utc(session.started_at), "ended_at": _utc(session.ended_at),
            "end_reason": session.end_reason,
        }  # fmt: skip

    # -- language practice's corrections (server/history/corrections.py) ---------------------------------------
    async def add_correction(
        self, session_id: str, profile_id: str | None, language: str, phrase: str, said: str, at: datetime
    ) -> None:
        await corrections.add(self._sessions, session_id, profile_id, language, phrase, said, at)

    async def mark_revisited(self, profile_id: str, language: str, key: str, at: datetime) -> None:
        await corrections.mark_revisited(self._sessions, profile_id, language, key, at)

    async def revisit(self, profile_id: str, language: str) -> corrections.Revisit | None:
        return await corrections.choose(self._sessions, profile_id, language)

    async def list_corrections(
        self, profile_id: str | None, everyone: bool = False, language: str | None = None
    ) -> list[dict[str, Any]]:
        return await corrections.listing(self._sessions, profile_id, everyone, language)

    # -- deletes ----------------------------------------------------------------------------------------------
    async def delete_session(self, session_id: str) -> bool:
        async with self._sessions.begin() as db:
            return (await db.execute(delete(Session).where(Session.id == session_id))).rowcount > 0

    async def delete_profile(self, profile_id: str) -> int:
        """The profile and all of its sessions; returns how many sessions went."""
        async with self._sessions.begin() as db:
            gone = (await db.execute(delete(Session).where(Session.profile_id == profile_id))).rowcount
            await db.execute(delete(Profile).where(Profile.id == profile_id))
        return gone

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Retention: sessions that started before ``cutoff``, and profiles last seen before it with none left."""
        async with self._sessions.begin() as db:
            gone = (await db.execute(delete(Session).where(Session.started_at < cutoff))).rowcount
            kept = select(Session.profile_id).where(Session.profile_id.is_not(None))
            await db.execute(delete(Profile).where(Profile.last_seen_at < cutoff, Profile.id.not_in(kept)))
        return gone
