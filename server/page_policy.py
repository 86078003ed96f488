"""What browsers are told about who may load, frame and call this server: the pages' Content-Security-Policy and
the CORS answers for pages of other origins (PARLEY_CORS_ORIGINS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from server import signalling
from server.config import Settings
from server.history import api as history

# The page loads nothing from elsewhere: scripts, styles and media come from this server only. Other sites may
# frame it only where PARLEY_FRAME_ORIGINS names them.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self' blob:; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


def page_csp(settings: Settings) -> str:
    return " ".join([PAGE_CSP, *settings.frame_origin_list()])


def _same_origin(request: web.Request, origin: str) -> bool:
    return origin == f"{request.scheme}://{request.host}"


def cors(settings: Settings, session_header: str) -> Callable:
    """Pages of other origins may place calls only when PARLEY_CORS_ORIGINS names them; a refused origin is
    turned away before any model time or peer connection is spent on it."""
    allowed = {o.strip() for o in settings.cors_origins.split(",") if o.strip()}

    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origin or _same_origin(request, origin):
            return await handler(request)
        if origin not in allowed:
            return signalling.json_error(403, f"calls from {origin} are not allowed here")
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if request.method == "OPTIONS":
            headers |= {"Access-Control-Allow-Methods": "GET, POST, DELETE", "Access-Control-Max-Age": "600",
                        "Access-Control-Allow-Headers": f"Content-Type, Authorization, {session_header}, "
                                                        f"{history.PROFILE_HEADER}"}  # fmt: skip
            return web.Response(status=204, headers=headers)
        response = await handler(request)
        response.headers.update(headers)
        return response

    return middleware


def html_csp(settings: Settings) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Every page the server sends (/, /static/*.html: the call page, the history) gets the pages' policy."""
    policy = page_csp(settings)

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        if response.content_type == "text/html" and "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = policy

    return hook
