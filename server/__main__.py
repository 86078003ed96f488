"""``python -m server [--host 127.0.0.1] [--port 8080]``: start the media server."""

from __future__ import annotations

import asyncio
import sys

from server import logs
from server.app import create_app
from server.config import parse_args
from server.serving import serve


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format)
    app = create_app(settings)
    print(f"Parley: loading models; the call page will be at http://{settings.host}:{settings.port}/", flush=True)
    asyncio.run(serve(app, settings.host, settings.port, settings.drain_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
