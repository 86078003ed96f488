"""Language practice that continues (issue 17): the corrections and suggestions the bot makes are kept per profile
and language, and the next session in that language opens by revisiting one of them.

- ``extract``: the correct forms a reply quotes after its language's correction cue (``You'd say "..."``,
  ``Se dice «...»``, ``「...」と言います``), as the language practice prompt's example teaches the model to write;
- the reads and writes (``Store`` delegates to them, so that the writer's ops and the API reach them by name);
- ``choose``: which one a session revisits: the least recently revisited, then the most frequent, then the latest.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.dialogue.modes import Revisit
from server.history.schema import CORRECTION_CHARS, Correction
from server.languages import LANGUAGES

# Opening quote -> the closing ones it pairs with: the quotes of all 13 languages ("" “” „“ «» »« 「」 『』). Single
# quotes are left out: ' and ’ are apostrophes too ("you'd", "l'ultima"), so they cannot tell where a quote ends.
QUOTES = {'"': '"', "“": "”", "„": "“”", "«": "»", "»": "«", "「": "」", "『": "』"}
MAX_WORDS_BETWEEN = 2  # "Se dice así: «...»", "On dit plutôt « ... »", "You'd say instead "...""


def _quoted() -> str:
    """One quote of any style; the words inside (not the quotes nor the spaces around them) are its one group."""
    styles = []
    for opening, closing in QUOTES.items():
        inside = re.escape(closing + "\n")
        styles.append(f"{re.escape(opening)}[^\\S\\n]*([^{inside}]{{1,{CORRECTION_CHARS}}}?)"
                      f"[^\\S\\n]*[{re.escape(closing)}]")  # fmt: skip
    return "(?:" + "|".join(styles) + ")"


@cache
def _pattern(language: str) -> re.Pattern[str]:
    """The cues of ``language`` around a quote: words may sit between a cue before the quote and the quote."""
    gap = f"[^\\S\\n]*[:：,，]?[^\\S\\n]*(?:\\w+[^\\S\\n]*[:：,，]?[^\\S\\n]*){{0,{MAX_WORDS_BETWEEN}}}?"
    alternatives = []
    # A cue starts a word ("say", not "essay"), except in scripts written without spaces (Chinese "我们一般说").
    start = "" if LANGUAGES[language].cjk else "(?<!\\w)"
    for cue in LANGUAGES[language].correction_cues:
        before, after = (re.escape(part.strip()) for part in cue.split("{}"))
        if before:
            alternatives.append(f"{start}{before}{gap}{_quoted()}")
        else:
            alternatives.append(f"{_quoted()}[^\\S\\n]*{after}")
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


def extract(reply: str, language: str) -> list[str]:
    """The correct forms ``reply`` quotes after (or, in Japanese and Korean, before) a correction cue of
    ``language``, in order, each once; the closing full stop of a quoted sentence is left out."""
    if language not in LANGUAGES:
        return []
    found: dict[str, str] = {}
    for match in _pattern(language).finditer(reply):
        phrase = next(group for group in match.groups() if group is not None)
        phrase = phrase.strip().rstrip(".,;:。、，").strip()
        if phrase and any(c.isalpha() for c in phrase):
            found.setdefault(fold(phrase), phrase)
    return list(found.values())


def fold(phrase: str) -> str:
    """The same phrase, whatever its case, punctuation and spacing: "Ayer fui al cine." and "ayer fui al cine"."""
    kept = "".join(c for c in phrase.casefold() if not unicodedata.category(c).startswith("P"))
    return " ".join(kept.split())[:CORRECTION_CHARS]


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


# -- writes (the writer's task) -------------------------------------------------------------------------------
async def add(
    sessions: async_sessionmaker[AsyncSession], session_id: str, profile_id: str | None, language: str,
    phrase: str, said: str, at: datetime,
) -> None:  # fmt: skip
    async with sessions.begin() as db:
        db.add(Correction(session_id=session_id, profile_id=profile_id, language=language, key=fold(phrase),
                          phrase=phrase[:CORRECTION_CHARS], said=said, at=at))  # fmt: skip


async def mark_revisited(
    sessions: async_sessionmaker[AsyncSession], profile_id: str, language: str, key: str, at: datetime
) -> None:
    async with sessions.begin() as db:
        await db.execute(
            update(Correction)
            .where(Correction.profile_id == profile_id, Correction.language == language, Correction.key == key)
            .values(revisited_at=at)
        )


# -- reads ----------------------------------------------------------------------------------------------------
async def choose(sessions: async_sessionmaker[AsyncSession], profile_id: str, language: str) -> Revisit | None:
    """The one to revisit: never revisited before any that was, the least recently revisited first; then the
    most frequent; then the latest. With what the person said the last time it came up."""
    revisited = func.max(Correction.revisited_at)
    query = (
        select(Correction.key)
        .where(Correction.profile_id == profile_id, Correction.language == language)
        .group_by(Correction.key)
        .order_by(
            case((revisited.is_(None), 0), else_=1), revisited, func.count().desc(), func.max(Correction.at).desc()
        )
        .limit(1)
    )
    async with sessions() as db:
        key = (await db.scalars(query)).first()
        if key is None:
            return None
        latest = (
            await db.scalars(
                select(Correction)
                .where(Correction.profile_id == profile_id, Correction.language == language, Correction.key == key)
                .order_by(Correction.at.desc(), Correction.id.desc())
                .limit(1)
            )
        ).first()
    return None if latest is None else Revisit(latest.phrase, latest.said, key)


async def listing(
    sessions: async_sessionmaker[AsyncSession], profile_id: str | None, everyone: bool, language: str | None
) -> list[dict[str, Any]]:
    """A profile's corrections (or everyone's), one entry per phrase and language, the latest first: how often it
    came up, when first and last, what was said the last time, and when a session last revisited it."""
    query = select(Correction).order_by(Correction.at.desc(), Correction.id.desc())
    if not everyone:
        query = query.where(Correction.profile_id == profile_id)
    if language is not None:
        query = query.where(Correction.language == language)
    async with sessions() as db:
        rows = (await db.scalars(query)).all()
    entries: dict[tuple[str | None, str, str], dict[str, Any]] = {}
    for row in rows:  # newest first: the first row of a phrase is its latest
        entry = entries.get((row.profile_id, row.language, row.key))
        if entry is None:
            entries[(row.profile_id, row.language, row.key)] = {
                "profile": row.profile_id, "language": row.language, "phrase": row.phrase, "said": row.said,
                "count": 1, "first_at": _utc(row.at), "last_at": _utc(row.at), "revisited_at": _utc(row.revisited_at),
                "session_id": row.session_id,
            }  # fmt: skip
        else:
            entry["count"] += 1
            entry["first_at"] = _utc(row.at)
    return list(entries.values())


async def of_session(sessions: async_sessionmaker[AsyncSession], session_id: str) -> list[dict[str, Any]]:
    """The corrections made in one session, in order (its record and its exports)."""
    async with sessions() as db:
        rows = (
            await db.scalars(
                select(Correction).where(Correction.session_id == session_id).order_by(Correction.at, Correction.id)
            )
        ).all()
    return [{"phrase": r.phrase, "said": r.said, "at": _utc(r.at)} for r in rows]
