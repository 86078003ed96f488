"""``python -m server [--host 127.0.0.1] [--port 8080]``: start the media server."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from server.app import create_app
from server.config import parse_args


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aioice and aiortc log every STUN exchange at INFO; keep the server's own lines readable.
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = create_app(settings)
    print(f"Parley: loading models; the call page will be at http://{settings.host}:{settings.port}/", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
