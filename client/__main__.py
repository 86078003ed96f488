"""``python -m client --wav in.wav --out reply.wav [--url ...] [--mode ...] [--language ...]``

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
import time

from client.call import CallClient, fetch_ice_servers, read_wav, write_wav
from server.languages import LANGUAGES


async def run(args: argparse.Namespace) -> int:
    if args.loopback or os.environ.get("PARLEY_ICE_LOOPBACK") == "1":
        from server.ice import use_loopback_only

        use_loopback_only()
    clip = read_wav(args.wav)
    try:  # what the page does: the server's STUN/TURN list, with a TURN credential for this call
        ice_servers = await fetch_ice_servers(args.url, args.token)
    except (RuntimeError, OSError) as exc:
        print(json.dumps({"type": "client_error", "message": str(exc)}), file=sys.stderr)
        return 1
    client = CallClient(args.url, args.mode, args.language, args.token, ice_servers)
    client.on_event = lambda event: print(json.dumps(event, ensure_ascii=False), flush=True)
    try:
        await client.connect()
        if not args.no_greeting:
            await client.wait_listening(args.timeout)
        started = time.monotonic()
        client.mic.play(clip)
        # The reply to the clip: the assistant's transcript after the person's.
        user_t, _ = await client.wait_for(
            lambda e: e["type"] == "transcript" and e["role"] == "user", args.timeout, started
        )
        await client.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", args.timeout, user_t)
        card = await client.end()
        if card is not None:
            print(format_scorecard(card), file=sys.stderr)
    except TimeoutError:
        print(json.dumps({"type": "client_error", "message": "timed out waiting for the reply"}), file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as exc:
        print(json.dumps({"type": "client_error", "message": str(exc)}), file=sys.stderr)
        return 1
    finally:
        await client.close()
        if args.out:
            write_wav(args.out, client.recording.audio())
    return 0


VERDICTS = {"correct": "correct", "partly": "partly right", "wrong": "not right", "no_answer": "no answer",
            "skipped": "skipped", "unanswered": "not answered"}  # fmt: skip


def format_scorecard(card: dict) -> str:
    """The interview scorecard as a person reads it."""
    lines = [f"Scorecard: {card['asked']} asked, {card['answered']} answered"]
    for n, q in enumerate(card["questions"], 1):
        lines.append(f"{n}. {q['question']} [{q['topic']}, {q['level']}]: {VERDICTS.get(q['verdict'], q['verdict'])}")
        lines += [f"   + {p}" for p in q["covered"]]
        if q["verdict"] != "unanswered":
            lines += [f"   - {p}" for p in q["missed"]]
    if card["study_next"]:
        lines.append("Study next: " + "; ".join(card["study_next"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__.splitlines()[0])
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
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
