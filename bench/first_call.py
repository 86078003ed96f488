"""The first call after start-up against the calls after it: a question typed as the greeting ends, and the time
to the first sound of the reply, on a fresh server of this checkout and of another (today's main), side by side.

    .venv/bin/python -m bench.first_call --baseline ../main [--calls 4] [--mode chat]

Each server is started fresh (embedded default models) and takes ``--calls`` calls one after another; the servers
take their calls in turn, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from bench.side_by_side import both, closing_line, parser
from bench.trials import TURN_TIMEOUT, is_, open_call
from parley.audio import SILENCE_DBFS
from server.ice import use_loopback_only

QUESTION = "What would you do on a sunny Saturday in a city you love?"


async def first_sound(url: str, mode: str) -> float:
    """Seconds from a question typed as the greeting ends to the reply's first loud frame."""
    call = await open_call(url, mode)
    try:
        asked = time.monotonic()
        call.send({"type": "text", "text": QUESTION})
        await call.wait_for(is_("state", state="speaking"), TURN_TIMEOUT, asked)
        heard = call.recording.first_loud_after(asked, SILENCE_DBFS)
        for _ in range(100):
            if heard is not None:
                break
            await asyncio.sleep(0.05)
            heard = call.recording.first_loud_after(asked, SILENCE_DBFS)
        if heard is None:
            raise RuntimeError("no reply audio")
        return heard - asked
    finally:
        await call.close()


async def run(args: argparse.Namespace) -> int:
    use_loopback_only()
    seconds: dict[str, list[float]] = {}
    load_before = os.getloadavg()
    async with both(args.baseline) as servers:
        for n in range(args.calls):
            for name, server in servers.items():
                took = await first_sound(server.url, args.mode)
                seconds.setdefault(name, []).append(took)
                print(f"  call {n + 1} {name:14s} first sound {took:.2f} s", flush=True)
    print(f"\nA question typed as the greeting ends ({args.mode} mode, embedded models): first call vs the others")
    for name, times in seconds.items():
        later = sorted(times[1:])
        median = later[len(later) // 2] if later else float("nan")
        print(f"  {name:14s} first call {times[0]:.2f} s; later calls median {median:.2f} s ({len(later)} calls)")
    closing_line("bench.first_call", load_before)
    return 0


def main() -> int:
    args = parser(__doc__)
    args.add_argument("--calls", type=int, default=4, help="calls per server (default 4)")
    args.add_argument("--mode", choices=("chat", "language", "interview"), default="chat")
    return asyncio.run(run(args.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
