"""Language practice that continues, its two costs: finding corrections in a reply (on the event loop, once per
language practice reply) and looking up the one a call revisits (racing the call's connection, which takes a few
hundred ms on loopback: the greeting is today's when the look-up loses).

    .venv/bin/python -m bench.corrections [--profiles 50] [--per-profile 400] [--lookups 200]

On a SQLite file of its own in a temporary folder (the server's default database).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.history import db
from server.history.corrections import extract, fold
from server.history.schema import Correction
from server.history.store import Store

REPLY = "¡Casi! Se dice así: «ayer fui al cine». ¿Y qué película viste con tu hermana el sábado por la tarde?"
PHRASES = 200  # distinct phrases a profile's corrections are drawn from


def time_extract(rounds: int = 20000) -> float:
    """Microseconds per reply."""
    started = time.perf_counter()
    for _ in range(rounds):
        extract(REPLY, "es")
    return (time.perf_counter() - started) / rounds * 1e6


async def time_lookups(folder: Path, profiles: int, per_profile: int, lookups: int) -> list[float]:
    """Milliseconds per look-up of the correction to revisit, each a profile's among ``per_profile``."""
    url = f"sqlite+aiosqlite:///{folder / 'bench.sqlite'}"
    await asyncio.to_thread(db.migrate, url)
    store = Store(db.create_engine(url))
    now = datetime.now(UTC)
    try:
        for p in range(profiles):
            await store.touch_profile(f"p:{p}", "page", None, now)
            await store.start_session(f"s{p}", f"s{p}", f"p:{p}", "language", "es", now)
        async with store._sessions.begin() as session:  # one transaction: the writer's way would take minutes
            for i in range(profiles * per_profile):
                phrase = f"frase número {random.randrange(PHRASES)}"
                session.add(Correction(session_id=f"s{i % profiles}", profile_id=f"p:{i % profiles}", language="es",
                                       key=fold(phrase), phrase=phrase, said="...",
                                       at=now - timedelta(minutes=i)))  # fmt: skip
        taken = []
        for i in range(lookups):
            started = time.perf_counter()
            await store.revisit(f"p:{i % profiles}", "es")
            taken.append((time.perf_counter() - started) * 1000)
        return taken
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=50)
    parser.add_argument("--per-profile", type=int, default=400)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    print(f"extract: {time_extract():.1f} us per reply")
    with tempfile.TemporaryDirectory() as folder:
        taken = asyncio.run(time_lookups(Path(folder), args.profiles, args.per_profile, args.lookups))
    taken.sort()
    print(f"revisit look-up, {args.profiles * args.per_profile} corrections ({args.per_profile} per profile): "
          f"median {statistics.median(taken):.2f} ms, p95 {taken[int(len(taken) * 0.95)]:.2f} ms, "
          f"max {max(taken):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
