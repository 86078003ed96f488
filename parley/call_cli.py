"""``python -m client --wav in.wav --out reply.wav [--url ...] [--mode ...] [--language ...]`` (``parley call``)

Places a call, waits for the greeting, plays the WAV as the microphone, records what comes back, prints every
event as a JSON line, and hangs up once the reply to the WAV has been heard in full (an interview's scorecard is
printed for people too, on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import aiohttp

import parley
from parley.events import Event, Scorecard, Transcript
from server.languages import LANGUAGES


def print_event(event: Event) -> None:
    print(json.dumps(dict(event.raw), ensure_ascii=False), flush=True)


def client_error(message: str) -> int:
    print(json.dumps({"type": "client_error", "message": message}), file=sys.stderr)
    return 1


async def run(args: argparse.Namespace) -> int:
    try:
        clip = await asyncio.to_thread(parley.read_wav, args.wav)
    except (OSError, EOFError, ValueError) as exc:  # (wave raises EOFError and wave.Error, a ValueError, on junk)
        return client_error(f"{args.wav}: {exc}")
    call = parley.connect(
        args.url, mode=args.mode, language=args.language, token=args.token, on_event=print_event,
        loopback=True if args.loopback else None,
    )  # fmt: skip
    try:
        await call.open()
        if not args.no_greeting:
            await call.greeting(args.timeout)
        started = await call.play(clip, wait=False)
        # The reply to the clip: the assistant's transcript after the person's.
        user = await call.wait_for(Transcript, role="user", since=started, timeout=args.timeout)
        await call.wait_for(Transcript, role="assistant", since=user, timeout=args.timeout)
        card = await call.end()
        if card is not None:
            print(format_scorecard(card), file=sys.stderr)
    except TimeoutError:
        return client_error("timed out waiting for the reply")
    except (RuntimeError, OSError, aiohttp.ClientError) as exc:
        return client_error(str(exc))
    finally:
        await call.close()
        if args.out and call.placed:
            call.save_wav(args.out)
    return 0


VERDICTS = {"correct": "correct", "partly": "partly right", "wrong": "not right", "no_answer": "no answer",
            "skipped": "skipped", "unanswered": "not answered"}  # fmt: skip


def format_scorecard(card: Scorecard) -> str:
    """The interview scorecard as a person reads it."""
    lines = [f"Scorecard: {card.asked} asked, {card.answered} answered"]
    for n, q in enumerate(card.questions, 1):
        lines.append(f"{n}. {q.question} [{q.topic}, {q.level}]: {VERDICTS.get(q.verdict, q.verdict)}")
        lines += [f"   + {p}" for p in q.covered]
        if q.verdict != "unanswered":
            lines += [f"   - {p}" for p in q.missed]
    if card.study_next:
        lines.append("Study next: " + "; ".join(card.study_next))
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m client") -> int:
    """The command line (``argv``: its arguments, without the program's name; default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--wav", required=True, help="16-bit PCM WAV played as the microphone")
    parser.add_argument("--out", help="where to write what the bot said (48 kHz WAV)")
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--mode", choices=("interview", "language", "chat"))
    parser.add_argument("--language", choices=tuple(LANGUAGES), help="left out: the server's default")
    parser.add_argument(
        "--token", default=os.environ.get("PARLEY_TOKEN"), help="the server's PARLEY_TOKEN, or a call token"
    )
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--no-greeting", action="store_true", help="play the WAV at once, over the greeting")
    parser.add_argument("--loopback", action="store_true", help="loopback ICE candidates only")
    return asyncio.run(run(parser.parse_args(argv)))
