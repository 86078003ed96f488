"""The history over HTTP, and what a server sets up for it (the writer, the migrations, retention).

Authorized like calls: where calls need no bearer, a person's page names its profile in ``X-Parley-Profile``;
where they do, a call token that names a ``user`` (not yet spent) reads that user's records; the server's keys
(``PARLEY_API_KEYS``, ``PARLEY_TOKEN``) read everyone's. One person's records are never shown to another: a
session that is not theirs is answered like one that does not exist (404).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from server import admission, signalling, tokens
from server.config import Settings
from server.history import corrections_api, db, recording
from server.history.export import filename, to_json, to_markdown
from server.history.recorder import Recorder, profile_key
from server.history.store import MAX_LIST, Store
from server.history.writer import Counters, Writer
from server.metrics import Metrics

if TYPE_CHECKING:
    from server.session import Call

logger = logging.getLogger(__name__)

PROFILE_HEADER = "X-Parley-Profile"
SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")
RETENTION_EVERY_S = 3600.0
READY_TIMEOUT_S = 10.0

WRITER = web.AppKey("history_writer", Writer)


@dataclass
class History:
    settings: Settings
    call_tokens: tokens.CallTokens
    writer: Writer
    ready: asyncio.Event
    metrics: Metrics | None = None
    recording_now: set[str] = field(default_factory=set)  # calls being recorded (their files are not finished)


HISTORY = web.AppKey("history", History)


@dataclass(frozen=True)
class Viewer:
    """Whose records a request may see: one profile's, or (``everyone``) all."""

    profile: str | None
    everyone: bool = False


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- set-up ---------------------------------------------------------------------------------------------------
def setup(app: web.Application, settings: Settings, call_tokens: tokens.CallTokens, metrics: Metrics) -> None:
    """The history's routes, and (unless ``PARLEY_HISTORY=off``) its writer and retention, on ``app``."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    corrections_api.setup(app, _route, _open)  # GET /history/corrections, with this module's helpers
    if settings.history == "off":
        return
    url = db.database_url(settings)
    ready = asyncio.Event()

    async def prepare() -> None:
        await asyncio.to_thread(db.migrate, url)  # its own engine and loop, off this one
        logger.info("history: database ready (%s)", url.split("://", 1)[0])
        ready.set()

    counters = Counters(lambda op: metrics.history_failures.labels(op).inc(), metrics.history_dropped.inc)
    writer = Writer(Store(db.create_engine(url)), counters, ready=prepare)
    app[WRITER] = writer
    app[HISTORY] = History(settings, call_tokens, writer, ready, metrics)
    metrics.watch_history(lambda: writer.pending)

    async def running(app: web.Application) -> AsyncIterator[None]:
        writer.start()
        retention = None
        if settings.retention_days > 0:
            retention = asyncio.get_running_loop().create_task(
                retain(writer, settings.retention_days, ready, recordings=recording.folder(settings))
            )
        yield
        if retention is not None:
            retention.cancel()
            await asyncio.gather(retention, return_exceptions=True)
        await writer.close()

    app.cleanup_ctx.append(running)


async def retain(
    writer: Writer,
    days: float,
    ready: asyncio.Event,
    every_s: float = RETENTION_EVERY_S,
    recordings: Path | None = None,
) -> None:
    """``PARLEY_RETENTION_DAYS``: sessions older than that are deleted, at start-up and then hourly (a write like
    any other: through the writer, never on a call's way)."""
    await ready.wait()
    while True:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        writer.submit("delete_older_than", cutoff=cutoff)
        # A recording is finished at its call's hang-up: one last changed before the cutoff is of an older session.
        if recordings is not None:
            await asyncio.to_thread(recording.prune, recordings, partial(_newer, cutoff=cutoff))
        await asyncio.sleep(every_s)


def _newer(path: Path, cutoff: datetime) -> bool:
    try:
        return path.stat().st_mtime >= cutoff.timestamp()
    except OSError:
        return True


def record(
    app: web.Application, call: Call, profile: str | None, display_name: str | None, consent: bool = False
) -> None:
    """Records ``call`` as it goes, for its profile; the call token's user wins. With the person's consent where
    the server offers it (``PARLEY_RECORDING=on``), its audio too."""
    writer = app.get(WRITER)
    if writer is None:
        return
    if consent and app[HISTORY].settings.recording == "on":
        _record_audio(app[HISTORY], call)
    responder = call.responder
    recorder = Recorder(writer, call.session_id, profile_key(profile, call.user), display_name, responder.mode,
                        responder.language, responder.scorecard)  # fmt: skip
    call.on_event.append(recorder.event)
    call.on_restart.append(recorder.restart)
    call.on_close.append(recorder.closed)

    def recall(*_start_over: str) -> None:  # a language lesson opens on a past correction; so does one switched to
        corrections_api.recall(writer, app[HISTORY].ready, call, recorder.profile_id)

    recall()
    call.on_restart.append(recall)


def _record_audio(history: History, call: Call) -> None:
    metrics = history.metrics
    failed = (lambda: metrics.history_failures.labels("recording").inc()) if metrics else (lambda: None)
    audio = recording.CallRecording(recording.path_for(history.settings, call.session_id), failed)
    history.recording_now.add(call.session_id)
    call.on_heard.append(audio.person)
    sent = call.track.on_sent  # the echo gate's: both see each frame as it leaves

    def both(pcm: Any) -> None:
        if sent is not None:
            sent(pcm)
        audio.bot(pcm)

    call.track.on_sent = both

    def finished() -> None:
        audio.finish()
        history.recording_now.discard(call.session_id)

    call.on_close.append(finished)


# -- who is asking --------------------------------------------------------------------------------------------
def _page_profile(request: web.Request) -> str | None:
    """The stored id of the profile the page names in its header, if it names one."""
    given = request.headers.get(PROFILE_HEADER)
    if given is None:
        return None
    try:
        signalling.check_profile(given)
    except signalling.OfferError as exc:
        raise Refused(400, str(exc)) from exc
    key = profile_key(given, None)
    return key[0] if key else None


def viewer(request: web.Request, history: History) -> Viewer:
    settings, call_tokens = history.settings, history.call_tokens
    given = admission.bearer(request)
    if given:
        if admission.api_key_ok(request, settings.api_keys, settings.token):
            # Everyone's, or one profile's: named by the query, or by the page (a single person's server, where the
            # page holds PARLEY_TOKEN, still shows each browser profile its own).
            scope = request.query.get("profile") or _page_profile(request)
            return Viewer(scope, everyone=scope is None)
        if not (call_tokens.enabled and given.count(".") == 2):
            raise Refused(401, "that bearer is neither a server key nor a call token")
        try:
            grant = call_tokens.verify(given)
        except tokens.TokenError as exc:
            raise Refused(exc.status, str(exc)) from exc
        if grant.user is None:
            raise Refused(403, "this call token names no user, so it has no records to read")
        return Viewer(f"u:{grant.user}")
    if settings.token or call_tokens.enabled:  # calls need a bearer here: so do their records
        raise Refused(401, "a bearer is required (Authorization: Bearer <call token or server key>)")
    profile = _page_profile(request)
    if profile is None:
        raise Refused(401, f"say whose records: the {PROFILE_HEADER} header (the page's profile id)")
    return Viewer(profile)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _open(request: web.Request) -> tuple[Store, Viewer]:
    history = request.app.get(HISTORY)
    if history is None:
        raise Refused(404, "the history is off on this server (PARLEY_HISTORY=off)")
    who = viewer(request, history)
    try:
        await asyncio.wait_for(history.ready.wait(), READY_TIMEOUT_S)
    except TimeoutError as exc:
        raise Refused(503, "the history's database is not ready yet; try again shortly") from exc
    return history.writer.store, who


async def _own(request: web.Request) -> tuple[Store, Viewer, str]:
    """The session the path names, if the viewer may see it; 404 otherwise (not theirs reads as not there)."""
    store, who = await _open(request)
    session_id = request.match_info["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        raise Refused(400, "that is not a session id")
    exists, owner = await store.owner(session_id)
    if not exists or not (who.everyone or (owner is not None and owner == who.profile)):
        raise Refused(404, "no such session")
    return store, who, session_id


def _format(request: web.Request) -> str:
    chosen = request.query.get("format", "json")
    if chosen not in ("json", "markdown"):
        raise Refused(400, 'format must be "json" or "markdown"')
    return chosen


def _download(sessions: list[dict[str, Any]], chosen: str, name: str) -> web.Response:
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{"md" if chosen == "markdown" else "json"}"'}
    if chosen == "markdown":
        return web.Response(text=to_markdown(sessions), content_type="text/markdown", headers=disposition)
    return web.Response(text=to_json(sessions), content_type="application/json", headers=disposition)


# -- routes ---------------------------------------------------------------------------------------------------
async def _list(request: web.Request) -> web.Response:
    store, who = await _open(request)
    try:
        limit = int(request.query.get("limit", MAX_LIST))
        before = datetime.fromisoformat(request.query["before"]) if "before" in request.query else None
        if before is not None:  # stored in UTC (SQLite compares the text)
            before = (before if before.tzinfo else before.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError as exc:
        raise Refused(400, "limit must be a number and before an ISO 8601 time") from exc
    if limit < 1:
        raise Refused(400, "limit must be at least 1")
    sessions = await store.list_sessions(who.profile, who.everyone, limit, before)
    return web.json_response({"sessions": sessions})


async def _get(request: web.Request) -> web.Response:
    store, _who, session_id = await _own(request)
    session = await store.get_session(session_id)
    if session is None:  # deleted meanwhile
        raise Refused(404, "no such session")
    return web.json_response(session)


async def _export_one(request: web.Request) -> web.Response:
    chosen = _format(request)
    store, _who, session_id = await _own(request)
    session = await store.get_session(session_id)
    return _download([session] if session else [], chosen, filename(session_id))


async def _export_all(request: web.Request) -> web.Response:
    chosen = _format(request)
    store, who = await _open(request)
    return _download(await store.sessions_of(who.profile, who.everyone), chosen, filename(None))


async def _delete_one(request: web.Request) -> web.Response:
    store, _who, session_id = await _own(request)
    await store.delete_session(session_id)
    path = recording.path_for(request.app[HISTORY].settings, session_id)
    await asyncio.to_thread(path.unlink, missing_ok=True)
    return web.json_response({"deleted": session_id})


async def _recording(request: web.Request) -> web.StreamResponse:
    """The call's recording (audio/ogg), kept with its first session; 404 when it has none."""
    _store, _who, session_id = await _own(request)
    path = recording.path_for(request.app[HISTORY].settings, session_id)
    if not await asyncio.to_thread(path.is_file):
        raise Refused(404, "this session has no recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/ogg"})


async def _delete_all(request: web.Request) -> web.Response:
    store, who = await _open(request)
    if who.profile is None:
        raise Refused(400, "name the profile whose data goes (?profile=): everyone's is not deleted at once")
    deleted = await store.delete_profile(who.profile)
    await _prune_recordings(request.app[HISTORY], store)
    return web.json_response({"deleted_sessions": deleted})


async def _prune_recordings(history: History, store: Store) -> None:
    """Deletes the finished recordings whose session is gone (a profile's data deleted)."""
    folder = recording.folder(history.settings)
    names = await asyncio.to_thread(lambda: [p.stem for p in folder.glob("*.ogg")] if folder.is_dir() else [])
    gone = {name for name in names if name not in history.recording_now and not (await store.owner(name))[0]}
    await asyncio.to_thread(recording.prune, folder, lambda path: path.stem not in gone)


async def _profile(request: web.Request) -> web.Response:
    store, who = await _open(request)
    if who.profile is None:
        raise Refused(400, "a server key reads a profile with ?profile=")
    found = await store.profile(who.profile)
    return web.json_response({"profile": who.profile, **(found or {"display_name": None})})


def _route(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A route whose refusals, and a database that is away, are JSON answers in words."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as exc:
            return _error(exc.status, str(exc))
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            logger.warning("history: %s %s failed (%s)", request.method, request.path, exc)
            return _error(503, "the history's database is unavailable; try again shortly")

    guarded.__name__ = handler.__name__
    return guarded


ROUTES = [
    ("GET", "/history/sessions", _route(_list)),
    ("GET", "/history/sessions/{session_id}", _route(_get)),
    ("GET", "/history/sessions/{session_id}/export", _route(_export_one)),
    ("GET", "/history/sessions/{session_id}/recording", _route(_recording)),
    ("DELETE", "/history/sessions/{session_id}", _route(_delete_one)),
    ("GET", "/history/export", _route(_export_all)),
    ("DELETE", "/history", _route(_delete_all)),
    ("GET", "/history/profile", _route(_profile)),
]
