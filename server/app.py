"""The aiohttp application: routes, shared state, model loading, and closing every call on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

from server import admission, agent, ice, page_policy, proxies, safe_json, sdp_guard, signalling, tokens
from server.audio.outbound import ConnectionTrack
from server.config import Settings
from server.drain import DRAIN, Drain
from server.heap import AfterCalls
from server.history import api as history
from server.history import continuity
from server.languages import catalogue
from server.metrics import Metrics
from server.models import Models, ProvidersFactory, load
from server.protocol import Ended
from server.providers.base import Providers
from server.session import Call
from server.spent_tokens import SpentTokens

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "client" / "static"
STALL_S = 0.1  # a loop late by this much has delayed several audio frames

SETTINGS = web.AppKey("settings", Settings)
MODELS = web.AppKey("models", Models)
CALLS = web.AppKey("calls", dict[str, Call])
SESSION_HEADER = "X-Parley-Session"
METRICS = web.AppKey("metrics", Metrics)
RATE_LIMITER = web.AppKey("rate_limiter", admission.OfferRateLimiter)
ICE_SERVERS = web.AppKey("ice_servers", list)
CALL_TOKENS = web.AppKey("call_tokens", tokens.CallTokens)
ADDRESS_CALLS = web.AppKey("address_calls", admission.AddressCalls)
ICE_ALLOW = web.AppKey("ice_allow", frozenset)  # kinds of remote candidates the server may check
AFTER_CALLS = web.AppKey("after_calls", AfterCalls)
SLOTS = web.AppKey("slots", admission.CallSlots)


def _default_providers(settings: Settings) -> Providers:
    from server.providers.registry import build

    return build(settings)


def create_app(settings: Settings, providers_factory: ProvidersFactory | None = None) -> web.Application:
    trusted = proxies.parse_trusted(settings.trusted_proxies)
    # Through a trusted proxy, the caller's address, scheme and host come from its headers: before CORS reads them.
    middlewares = [
        json_errors,
        *([proxies.forwarded(trusted)] if trusted else []),
        page_policy.cors(settings, SESSION_HEADER),
    ]
    app = web.Application(middlewares=middlewares)
    app[SETTINGS] = settings
    app[MODELS] = Models()
    app[CALLS] = {}
    app[METRICS] = Metrics()
    app[RATE_LIMITER] = admission.OfferRateLimiter(settings.offers_per_minute)
    app[ICE_SERVERS] = ice.parse_servers(settings.ice_servers)  # validated once, used by every call
    shared = SpentTokens(Path(settings.spent_tokens_db)) if settings.spent_tokens_db else None
    app[CALL_TOKENS] = tokens.CallTokens(tokens.parse_keys(settings.signing_keys), settings.call_token_ttl_s, shared)
    app[ADDRESS_CALLS] = admission.AddressCalls(settings.calls_per_address)
    app[ICE_ALLOW] = sdp_guard.parse_allowed(settings.ice_allow_candidates, settings.ice_loopback)
    app[DRAIN] = Drain()
    app[AFTER_CALLS] = AfterCalls(idle=lambda: not app[CALLS])
    app[SLOTS] = admission.CallSlots(settings.call_capacity())
    app[METRICS].watch_slots(app[SLOTS])
    if settings.ice_loopback:
        ice.use_loopback_only()
    factory = providers_factory or _default_providers

    async def load_models(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(load(app[MODELS], settings, factory, verify=providers_factory is None))
        yield
        task.cancel()

    app.cleanup_ctx.append(load_models)
    app.cleanup_ctx.append(watch_loop)
    if settings.agent_port:
        app.cleanup_ctx.append(agent.agent_context(settings.host, settings.agent_port, lambda: agent_state(app)))
    app.on_shutdown.append(close_calls)
    app.on_response_prepare.append(page_policy.html_csp(settings))
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    app.router.add_get("/ice", ice_servers)
    app.router.add_get("/languages", languages)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/offer", offer)
    app.router.add_post("/resume", resume)
    app.router.add_post("/tokens", mint_token)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    history.setup(app, settings, app[CALL_TOKENS], app[METRICS])
    return app


def agent_state(app: web.Application) -> str:
    """The line HAProxy's agent check reads (server/agent.py)."""
    models, slots = app[MODELS], app[SLOTS]
    loaded = models.providers is not None and models.vad is not None
    return agent.agent_line(loaded, bool(models.error), app[DRAIN].active, slots.free, slots.capacity)


@web.middleware
async def json_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Every non-2xx answer is JSON ``{"error": ...}``, aiohttp's own 404/405/413 included."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return signalling.json_error(exc.status, reason or exc.reason)
    except Exception:  # a bug: still a JSON answer, and logged with its traceback
        logger.exception("%s %s failed", request.method, request.path)
        return signalling.json_error(500, "internal server error")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def healthz(request: web.Request) -> web.Response:
    models = request.app[MODELS]
    if request.app[DRAIN].active:  # a balancer stops sending calls here
        return signalling.json_error(503, "shutting down")
    if models.error:
        return signalling.json_error(503, f"models failed to load: {models.error}")
    if models.providers is None:
        return signalling.json_error(503, "loading models")
    return web.json_response({"status": "ok", "calls": len(request.app[CALLS])})


async def ice_servers(request: web.Request) -> web.Response:
    """The STUN/TURN servers the call page should use (the same the server uses), with a TURN credential of its
    own that expires. The same authorization as /offer; a call token is checked here, and spent by /offer."""
    app = request.app
    try:
        grant = admission.authorize(request, app[SETTINGS].token, app[CALL_TOKENS])
    except tokens.TokenError as exc:
        return signalling.json_error(exc.status, str(exc))
    settings = app[SETTINGS]
    name = ice.turn_name(settings.turn_secret, grant.user if grant else None) if settings.turn_secret else ""
    return web.json_response({"iceServers": _ice_for(app, name)})


def _turn(settings: Settings, name: str) -> dict:
    urls = ice.parse_turn_urls(settings.turn_urls)
    return ice.turn_credential(settings.turn_secret, urls, name, settings.turn_ttl_s)


async def mint_token(request: web.Request) -> web.Response:
    """``POST /tokens``: an app's backend, with its API key, gets a short-lived token for one call."""
    app = request.app
    settings = app[SETTINGS]
    if not app[CALL_TOKENS].enabled:
        return signalling.json_error(404, "call tokens are not enabled on this server (PARLEY_SIGNING_KEYS is unset)")
    if not admission.api_key_ok(request, settings.api_keys, settings.token):
        return signalling.json_error(401, "an API key is required (Authorization: Bearer <PARLEY_API_KEYS key>)")
    try:
        async with asyncio.timeout(settings.http_timeout_s):
            too_large = tokens.TokenError("the request is too large", 413)
            raw = await signalling.read_body(request, tokens.MAX_REQUEST_BYTES, too_large)
        body = safe_json.loads(raw) if raw.strip() else {}
        token, expires_at = app[CALL_TOKENS].mint(body)
    except TimeoutError:
        return signalling.json_error(408, f"the request did not arrive within {settings.http_timeout_s:g} s")
    except safe_json.BadJson as exc:
        return signalling.json_error(400, f"the body is {exc}")
    except tokens.TokenError as exc:
        return signalling.json_error(exc.status, str(exc))
    return web.json_response({"token": token, "expires_at": expires_at})


async def languages(request: web.Request) -> web.Response:
    """The languages a call may use (server/languages.py): the call page fills its picker from them."""
    # Whether calls may be recorded here (kept with their history): the page offers its "Record this call" box then.
    settings = request.app[SETTINGS]
    return web.json_response({**catalogue(), "recording": settings.recording == "on" and settings.history == "on"})


async def status(request: web.Request) -> web.Response:
    """For a load balancer: how full this node is and what it runs on."""
    app = request.app
    models = app[MODELS]
    return web.json_response(
        {
            "ready": models.providers is not None and not app[DRAIN].active,
            "draining": app[DRAIN].active,
            "active_calls": len(app[CALLS]),
            "capacity": app[SLOTS].capacity,
            "free_slots": app[SLOTS].free,  # calls in progress and offers being set up both hold one
            "providers": {stage: app[SETTINGS].provider(stage) for stage in ("stt", "llm", "tts")},
        }
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def offer(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    if app[DRAIN].active:
        return signalling.json_error(503, "the server is shutting down; try again shortly")
    try:
        grant = admission.authorize(request, settings.token, app[CALL_TOKENS])
    except tokens.TokenError as exc:
        return signalling.json_error(exc.status, str(exc))
    address = request.remote or "unknown"
    if not app[RATE_LIMITER].allow(address):
        return signalling.json_error(429, "too many calls from this address; wait a minute")
    if not app[ADDRESS_CALLS].take(address):
        limit = settings.calls_per_address
        return signalling.json_error(429, f"this address already has {limit} calls open; end one first")
    # The capacity check and the slot are one step, before any await: a burst of offers admits exactly capacity.
    if not app[SLOTS].take():
        app[ADDRESS_CALLS].give_back(address)
        return signalling.json_error(503, "the server is at capacity; try again shortly")
    placed: tuple[Call, RTCSessionDescription] | web.Response | None = None
    try:
        placed = await _place(request, grant, address)
    finally:
        if not isinstance(placed, tuple):  # refused or failed: the address's place and the slot are free again
            app[ADDRESS_CALLS].give_back(address)
            app[SLOTS].give_back()
    if isinstance(placed, web.Response):
        return placed
    call, answer = placed
    return web.json_response(
        {"sdp": answer.sdp, "type": answer.type, "session_id": call.session_id,
         "reconnect_secret": call.reconnection.secret},
        headers={SESSION_HEADER: call.session_id},  # a balancer sends the call's /resume here (deploy/haproxy.cfg)
    )  # fmt: skip


async def resume(request: web.Request) -> web.Response:
    """A call's client coming back on a new connection (server/reconnect.py): a new offer, the call's
    ``session_id`` and the ``reconnect_secret`` its first answer gave it. Needs no call token: the secret is it."""
    app = request.app
    settings = app[SETTINGS]
    try:
        body = await signalling.read_json(request, settings.http_timeout_s)
        sdp = signalling.parse_offer(body)[0]
    except signalling.OfferError as exc:
        return signalling.json_error(exc.status, str(exc))
    session_id = body.get("session_id")
    call = app[CALLS].get(session_id) if isinstance(session_id, str) else None
    if call is None or call.ending:
        return signalling.json_error(404, "that call has ended (or is not on this server): start a new one")
    if not call.reconnection.owned_by(body.get("reconnect_secret")):
        return signalling.json_error(403, "that call belongs to another client")
    pc = RTCPeerConnection(ice.configuration(_ice_for(app, call.session_id)))
    call.wire(pc)
    await call.reconnection.take_over(pc)
    try:
        answer = await signalling.answer(pc, sdp, ConnectionTrack(call.track), settings.ice_loopback, app[ICE_ALLOW])
    except signalling.OfferError as exc:  # the call stays away, waiting for a usable offer
        return signalling.json_error(400, str(exc))
    logger.info("call %s: taken over by a new connection", call.session_id)
    return web.json_response({"sdp": answer.sdp, "type": answer.type, "session_id": call.session_id})


def _ice_for(app: web.Application, name: str) -> list[dict]:
    """The configured ICE servers, and the server's own relay (if it has one) on a credential of ``name``'s."""
    servers = list(app[ICE_SERVERS])
    settings = app[SETTINGS]
    if settings.turn_secret:
        servers.append(_turn(settings, name))
    return servers


async def _place(
    request: web.Request, grant: tokens.Grant | None, address: str
) -> tuple[Call, RTCSessionDescription] | web.Response:
    """The call for an admitted offer (its slot taken), answered; or the JSON error that says why not."""
    app = request.app
    settings = app[SETTINGS]
    defaults = (grant.default_mode(), grant.default_language()) if grant else (None, None)
    try:
        sdp, mode, language, profile, display_name, record = await signalling.read_offer(
            request, *defaults, timeout_s=settings.http_timeout_s
        )
    except signalling.OfferError as exc:
        return signalling.json_error(exc.status, str(exc))
    models = app[MODELS]
    if models.providers is None or models.vad is None:
        return signalling.json_error(503, "the server is still loading its models; try again shortly")
    if grant is not None:
        try:
            grant.check(mode, language)
            await app[CALL_TOKENS].spend_everywhere(grant)  # again: another offer (or worker) may have spent it
        except tokens.TokenError as exc:
            return signalling.json_error(exc.status, str(exc))

    session_id = signalling.new_session_id()
    pc = RTCPeerConnection(ice.configuration(_ice_for(app, session_id)))
    call = Call(
        session_id, pc, settings, models.providers, models.vad, app[METRICS], mode, language, grant, models.turn
    )
    call.attach()
    # An interview picks up where the person's last one ended: read while the connection is made, never waited for.
    continuity.resume(app, call, profile)
    try:
        answer = await signalling.answer(pc, sdp, ConnectionTrack(call.track), settings.ice_loopback, app[ICE_ALLOW])
    except signalling.OfferError as exc:
        await call.close()
        return signalling.json_error(400, str(exc))
    except Exception:
        logger.exception("could not answer an offer")
        await call.close()
        return signalling.json_error(500, "could not set up the call")

    if call.closed.is_set():  # its connection failed while it was being answered: nothing would free it later
        return signalling.json_error(500, "could not set up the call")
    calls = app[CALLS]
    calls[session_id] = call
    app[METRICS].calls.inc()
    app[METRICS].active_calls.inc()

    def forget() -> None:
        calls.pop(session_id, None)
        app[METRICS].active_calls.dec()
        app[ADDRESS_CALLS].give_back(address)
        app[SLOTS].give_back()
        app[AFTER_CALLS].call_ended()

    call.on_close.append(forget)
    history.record(app, call, profile, display_name, record)
    call.answered()
    user = f" for user {call.user!r}" if call.user is not None else ""
    logger.info("call %s: %s/%s from %s%s", session_id, mode, language, address, user)
    return call, answer


async def close_calls(app: web.Application) -> None:
    """Shutdown: every call still open is told, then hung up (after a drain, none is left; server/drain.py)."""
    calls = list(app[CALLS].values())
    for call in calls:
        call.send(Ended(type="ended", reason="shutdown"))
    if calls:
        await asyncio.sleep(0.2)  # let the events leave
    await asyncio.gather(*(call.close() for call in calls), return_exceptions=True)
    await app[AFTER_CALLS].close()


async def watch_loop(app: web.Application) -> AsyncIterator[None]:
    """Logs when the event loop stalls: audio moves every 20 ms, so a blocked loop is heard as a gap."""

    async def watch() -> None:
        interval = 0.05
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            lag = loop.time() - started - interval
            if lag > STALL_S:
                app[METRICS].loop_stalls.inc()
                logger.warning("event loop stalled for %.0f ms", lag * 1000)

    loop = asyncio.get_running_loop()
    task = loop.create_task(watch())
    yield
    task.cancel()
