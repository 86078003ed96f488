"""This checkout and a baseline checkout (today's main) measured at once: each a fresh server of the embedded
default, taking trials in turn so that both see the same machine load (bench.pauses, bench.interview_air,
bench.first_call); and the closing line every bench prints."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parent.parent


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench's argument parser, with ``--baseline``."""
    made = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    made.add_argument("--baseline", type=lambda s: Path(s).resolve(), required=True,
                      help="another checkout to compare with (main)")  # fmt: skip
    return made


@asynccontextmanager
async def both(baseline: Path) -> AsyncIterator[dict[str, ServerProcess]]:
    """The two servers, healthy, by name ("this checkout", "baseline"); stopped afterwards."""
    servers = {"this checkout": ServerProcess(root=ROOT), "baseline": ServerProcess(root=baseline)}
    try:
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            print(f"{name}: {server.url}, healthy after {await server.wait_healthy():.1f} s (log {server.log_path})")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def closing_line(module: str, load_before: tuple[float, float, float]) -> None:
    """The machine's load before and after, and the command that gave the figures."""
    load = os.getloadavg()
    print(f"\nload average {load_before[0]:.1f} before, {load[0]:.1f} after; "
          f"command: .venv/bin/python -m {module} {' '.join(sys.argv[1:])}")  # fmt: skip
