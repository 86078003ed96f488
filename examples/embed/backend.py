"""A minimal app that embeds Parley: its backend mints a call token with the API key, its page (on this app's
own origin, not Parley's) holds a ``<parley-call>`` element that places the call with it.

    PARLEY_URL=https://parley.example.com PARLEY_API_KEY=... python examples/embed/backend.py --port 8000

Parley runs with ``PARLEY_SIGNING_KEYS``, ``PARLEY_API_KEYS`` (the same key as ``PARLEY_API_KEY`` here) and
``PARLEY_CORS_ORIGINS`` naming this app's origin (e.g. ``http://127.0.0.1:8000``). The API key stays on this
server: the browser only ever sees a token that starts one call within a minute, in the modes this app allows.
"""

from __future__ import annotations

import argparse
import html
import os
from pathlib import Path

import aiohttp
from aiohttp import web

HERE = Path(__file__).resolve().parent
PARLEY_URL = web.AppKey("parley_url", str)
API_KEY = web.AppKey("api_key", str)
PAGE = web.AppKey("page", str)


async def page(request: web.Request) -> web.Response:
    return web.Response(text=request.app[PAGE], content_type="text/html")


async def call_token(request: web.Request) -> web.Response:
    """The page asks for a call; this app decides who the person is and what the call may be."""
    # A real app checks its own session here (a cookie, a login) and refuses people it does not know.
    user = "demo-user-42"
    body = {"modes": ["chat", "language"], "user": user}
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {request.app[API_KEY]}"}
        async with http.post(f"{request.app[PARLEY_URL]}/tokens", json=body, headers=headers) as resp:
            minted = await resp.json()
            if resp.status != 200:
                return web.json_response({"error": minted.get("error", "no token")}, status=502)
    # The element (token-url) reads "token"; "url" and "parley" say where to call.
    return web.json_response({"parley": request.app[PARLEY_URL], "url": request.app[PARLEY_URL], **minted})


def make_app(parley_url: str, api_key: str) -> web.Application:
    app = web.Application()
    app[PARLEY_URL] = parley_url.rstrip("/")
    app[API_KEY] = api_key
    # The app's page, with Parley's address where it loads the element from and calls (read once, at start).
    template = (HERE / "index.html").read_text(encoding="utf-8")
    app[PAGE] = template.replace("{{PARLEY_URL}}", html.escape(app[PARLEY_URL]))
    app.router.add_get("/", page)
    app.router.add_post("/call-token", call_token)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    web.run_app(make_app(os.environ["PARLEY_URL"], os.environ["PARLEY_API_KEY"]), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
