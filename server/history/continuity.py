"""Interviews that continue: what a profile's past interviews say about the next one (read only).

At call start the interview is handed the level the person's last interview ended at, the questions they were
asked before (most recent last) and the topics whose last question was missed. The read runs as a task of the
call: the greeting's first question waits for it at most the responder's HISTORY_GRACE_S, and a slow or failing
database leaves the interview as it was (a fresh start at "mid"), logged and counted. Nothing here writes; the
records are the recorder's (recorder.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from server.dialogue.bank import Past
from server.dialogue.interview import Interview
from server.history.api import HISTORY, History
from server.history.recorder import profile_key
from server.history.schema import Question, Scorecard, Session

if TYPE_CHECKING:
    from server.session import Call

logger = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 3.0  # past this the interview goes on without its past: the call never waits for the database
RECENT_QUESTIONS = 2000  # enough to cover every question of the bank many times over
WEAK_SESSIONS = 5  # a topic missed longer ago than this many interviews has had its chance to come back
NOT_MISSED = ("correct", "unanswered")


async def load(engine: AsyncEngine, profile_id: str) -> Past:
    """The profile's past interviews, from its newest sessions back."""
    async with AsyncSession(engine) as db:
        level = await db.scalar(
            select(Scorecard.level)
            .join(Session, Session.id == Scorecard.session_id)
            .where(Session.profile_id == profile_id, Session.mode == "interview")
            .order_by(Session.started_at.desc(), Session.id.desc())
            .limit(1)
        )
        rows = (
            await db.execute(
                select(Question.session_id, Question.question_id, Question.topic, Question.verdict)
                .join(Session, Session.id == Question.session_id)
                .where(Session.profile_id == profile_id, Session.mode == "interview")
                .order_by(Session.started_at.desc(), Session.id.desc(), Question.position.desc())
                .limit(RECENT_QUESTIONS)
            )
        ).all()
    asked: list[str] = []
    weak: set[str] = set()
    decided: set[str] = set()  # topics whose latest question has been looked at
    sessions: list[str] = []
    for session_id, question_id, topic, verdict in rows:  # newest first
        if question_id not in asked:
            asked.append(question_id)
        if not sessions or sessions[-1] != session_id:
            sessions.append(session_id)
        if topic in decided or verdict == "unanswered" or len(sessions) > WEAK_SESSIONS:
            continue
        decided.add(topic)  # the topic's latest answer decides: missed, or answered since
        if verdict not in NOT_MISSED:
            weak.add(topic)
    return Past(level=level, asked=tuple(reversed(asked)), weak_topics=frozenset(weak))


def resume(app: web.Application, call: Call, page_profile: str | None) -> None:
    """Hands ``call``'s interview (now, and after each start-over into one) its profile's past, when it has a
    profile and the history is on."""
    history = app.get(HISTORY)
    key = profile_key(page_profile, call.user)
    if history is None or key is None:
        return
    last: list[Interview] = []  # the call's latest interview

    def start(*_: str) -> None:
        interview = call.responder.interview
        if interview is None:
            return
        before = last[-1] if last else None
        last[:] = [interview]
        if before is not None and before.past is not None:
            # Started over within the call (the greeting asks now): what was read, with what was asked since,
            # rather than a read that may not see the last few questions yet (the writer is behind the call).
            interview.continue_from(before.carried())
        else:
            call.responder.expect_past(call.spawn(_hand_over(history, key[0], interview, call.session_id)))

    start()
    call.on_restart.append(start)


async def _hand_over(history: History, profile_id: str, interview: Interview, call_id: str) -> None:
    try:
        async with asyncio.timeout(LOAD_TIMEOUT_S):
            await history.ready.wait()  # the migrations, at a server's start
            past = await load(history.writer.store.engine, profile_id)
    except Exception as exc:  # (TimeoutError included) today's behaviour: a fresh interview
        history.writer.counters.failed("continuity")  # parley_history_failures_total{op="continuity"}
        logger.warning("call %s: the past interviews could not be read (%r); starting afresh", call_id, exc)
        return
    interview.continue_from(past)
    logger.info("call %s: interview continues at %s, %d questions asked before, weak topics %s", call_id,
                interview.level, len(past.asked), sorted(past.weak_topics))  # fmt: skip
