"""Dead air in interviews: after a typed answer, how long until the first word of the reply, and the longest
silence inside the reply (the verdict opener, the feedback, the next question), at the client, side by side with
another checkout (today's main) on the embedded models.

    .venv/bin/python -m bench.interview_air --baseline ../main [--answers 6]

Each trial is a fresh interview call: the question the greeting asks is read from its transcript, and a scripted
answer to it (bench/interview_answers.py; partly right and wrong ones, which get feedback from the model) is typed.
The reply is the received audio from its first loud frame (> -45 dBFS) to the assistant's transcript; a silence is
a run of quiet frames inside it. Sentences of the voice itself are 0.2-0.5 s apart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from bench.interview_answers import ANSWERS
from bench.side_by_side import both, closing_line, parser
from bench.trials import TURN_TIMEOUT, is_, open_call
from parley.audio import SILENCE_DBFS
from server.dialogue.bank import default_bank
from server.ice import use_loopback_only

BANK = default_bank()


def scripted_answer(greeting: str, n: int) -> str:
    """A partly right or wrong scripted answer to the question in ``greeting`` (else a generic wrong one)."""
    asked = next((q for q in BANK.questions if q.text in greeting), None)
    choices = [s for s in ANSWERS if asked is not None and s.question == asked.id and s.kind in ("partial", "wrong")]
    if not choices:
        return "I think you would just put everything in one big database table and it would be fine"
    return choices[n % len(choices)].answer


async def trial(url: str, n: int) -> tuple[float, float]:
    """(seconds from the typed answer to the reply's first sound, longest silence inside the reply)."""
    call = await open_call(url, "interview")
    try:
        greeting = next(e["text"] for _, e in call.events if e["type"] == "transcript" and e["role"] == "assistant")
        asked = time.monotonic()
        call.send({"type": "text", "text": scripted_answer(greeting, n)})
        done, _ = await call.wait_for(is_("transcript", role="assistant"), TURN_TIMEOUT, asked)
        heard = call.recording
        loud = [a for a, level in zip(heard.arrivals, heard.levels, strict=True)
                if asked < a <= done + 0.2 and level > SILENCE_DBFS]  # fmt: skip
        if not loud:
            raise RuntimeError("no reply audio")
        gaps = [b - a for a, b in zip(loud, loud[1:], strict=False)]
        return loud[0] - asked, max(gaps, default=0.0)
    finally:
        await call.close()


def line(name: str, rows: list[tuple[float, float]]) -> str:
    first = statistics.median(r[0] for r in rows)
    longest = sorted(r[1] for r in rows)
    over = sum(g > 1.0 for g in longest)
    return (f"  {name:14s} first word p50 {first:.2f} s; longest silence inside a reply p50 "
            f"{statistics.median(longest):.2f} s, max {longest[-1]:.2f} s; replies with a silence over 1 s: "
            f"{over} of {len(rows)}")  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    use_loopback_only()
    results: dict[str, list[tuple[float, float]]] = {}
    load_before = os.getloadavg()
    async with both(args.baseline) as servers:
        for n in range(args.answers):
            for name, server in servers.items():  # in turn: both see the same load
                first, longest = await trial(server.url, n)
                results.setdefault(name, []).append((first, longest))
                print(f"  answer {n + 1} {name:14s} first word {first:.2f} s, longest silence {longest:.2f} s",
                      flush=True)  # fmt: skip
    print("\nInterview replies to typed answers (embedded models)")
    for name, rows in results.items():
        print(line(name, rows))
    closing_line("bench.interview_air", load_before)
    return 0


def main() -> int:
    args = parser(__doc__)
    args.add_argument("--answers", type=int, default=6, help="typed answers per server (default 6)")
    return asyncio.run(run(args.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
