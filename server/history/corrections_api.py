"""Language practice that continues, on the server's side: a language call looks up the correction to revisit as
it starts (its greeting waits for it a moment at most), and ``GET /history/corrections`` lists a person's corrections,
authorized like the other ``/history`` routes: ``server/history/api.py`` hands over its helpers (this module does
not import it, which imports this one)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.dialogue.modes import Revisit
from server.history.store import Store
from server.history.writer import Writer
from server.languages import LANGUAGES

if TYPE_CHECKING:
    from server.session import Call

logger = logging.getLogger(__name__)

# The look-up races the call's connection (ICE and DTLS: a few hundred ms on loopback, more over the internet):
# the greeting goes when the call connects, and waits at most Responder's HISTORY_GRACE_S for a look-up still under
# way. One still running after this is given up, logged and counted: the greeting has gone by then.
LOOKUP_TIMEOUT_S = 3.0


Handler = Callable[[web.Request], Awaitable[web.Response]]
# api.py's: the store and whose records the request may see (a Viewer: .profile, .everyone), or its refusal
Opener = Callable[[web.Request], Awaitable[tuple[Store, Any]]]


def setup(app: web.Application, guard: Callable[[Handler], Handler], open_history: Opener) -> None:
    """``guard``: api.py's wrapper that answers refusals and a database that is away in words."""

    async def corrections(request: web.Request) -> web.Response:
        """``GET /history/corrections[?language=xx]``: one entry per phrase and language, the latest first."""
        store, who = await open_history(request)  # who may ask first: a stranger learns nothing, not even a 400
        language = request.query.get("language")
        if language is not None and language not in LANGUAGES:
            return web.json_response({"error": f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}"},
                                     status=400)  # fmt: skip
        return web.json_response({"corrections": await store.list_corrections(who.profile, who.everyone, language)})

    app.router.add_route("GET", "/history/corrections", guard(corrections))


def recall(writer: Writer, ready: asyncio.Event, call: Call, profile_id: str | None) -> None:
    """Starts looking up the correction ``call`` opens with, where its person may have one in its language; the
    greeting takes it if it has come by then (``Responder.expect_revisit``)."""
    responder = call.responder
    if profile_id is None or not responder.persona.revisits(responder.language):
        return
    language = responder.language

    async def look_up() -> Revisit | None:
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                await ready.wait()  # the migrations, at a server's first calls
                revisit = await writer.store.revisit(profile_id, language)
        except Exception as exc:  # a slow, locked or failing database: today's greeting, and the call goes on
            writer.counters.failed("revisit")  # parley_history_failures_total{op="revisit"}
            logger.warning("call %s: no correction to revisit, the history did not answer (%s: %s)", call.session_id,
                           type(exc).__name__, str(exc)[:200])  # fmt: skip
            return None
        took_ms = (asyncio.get_running_loop().time() - started) * 1000
        logger.info("call %s: %s (%.0f ms)", call.session_id,
                    "a correction to revisit" if revisit else "no correction to revisit yet", took_ms)  # fmt: skip
        return revisit

    def said(chosen: Revisit) -> None:
        writer.submit("mark_revisited", profile_id=profile_id, language=language, key=chosen.key,
                      at=datetime.now(UTC))  # fmt: skip

    responder.expect_revisit(call.spawn(look_up()), said)
