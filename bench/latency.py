"""``python -m bench.latency [--audio-dir DIR] [--clips N] [--url URL]``

Measures a Parley server from outside, as a separate WebRTC client over loopback (method: bench/README.md):
1. voice to voice: end of the person's speech -> first reply audio at the client, plus the server's own
   per-stage ``metrics`` events;
2. barge-in: the person starts talking over the bot -> the bot's audio stops at the client, and -> the
   server's ``interrupted`` event.
Without ``--url`` it starts ``python -m server`` itself on a free port, with the embedded default models.
The person's turns are recorded English speech, ``DIR/en/<name>_48k.wav`` (16-bit mono) with ``<name>.txt``;
the recordings are not in the repository (LibriSpeech, FLEURS or Common Voice clips will do: see "Recorded
speech" in bench/README.md). Without them it stops with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from bench.capacity import gap_p99, scrape
from bench.clips import AUDIO_DIR_HELP, DEFAULT_AUDIO_DIR, Clip, english_clips
from bench.report import fmt_ms, print_table, summarize
from bench.serverproc import serving
from bench.trials import PROMPTS, BargeInResult, TurnResult, barge_in, open_call, voice_to_voice
from server.ice import use_loopback_only


async def measure_turns(url: str, mode: str, clips: list[Clip], warmup: Clip | None) -> list[TurnResult]:
    """One call, one turn per clip, each after the previous reply has finished (a real conversation: the
    history grows, and the server keeps its LLM cache warm between turns)."""
    print(f"\n## Voice to voice ({mode} mode, one call, {len(clips)} turns)", flush=True)
    call = await open_call(url, mode)
    results: list[TurnResult] = []
    try:
        if warmup is not None:
            # The first inference of each model in a fresh process pays one-off allocations; not counted.
            r = await voice_to_voice(call, warmup)
            print(f"  warm-up {r.clip:25s} end->audio {fmt_ms(r.latency_s):>7s}  (not counted)", flush=True)
        for clip in clips:
            r = await voice_to_voice(call, clip)
            results.append(r)
            m = r.metrics or {}
            print(
                f"  {r.clip:24s} end->audio {fmt_ms(r.latency_s):>7s} (rtp {fmt_ms(r.latency_rtp_s):>7s})   "
                f"server: stt {m.get('stt_ms')} ms, "
                f"llm {m.get('llm_first_token_ms')} ms, tts {m.get('tts_first_audio_ms')} ms, "
                f"response {m.get('response_ms')} ms   heard {r.heard[:40]!r} {r.note}",
                flush=True,
            )
    finally:
        await call.close()
    return results


async def measure_barge_ins(url: str, mode: str, clips: list[Clip], trials: int) -> list[BargeInResult]:
    """A fresh call per trial: a typed question (no STT wait), then a clip over the reply 0.5-1.0 s after it
    started. Trials where the bot was not speaking at the onset measure nothing; they are retried (up to 2x)."""
    print(f"\n## Barge-in ({mode} mode, a fresh call per trial, {trials} trials)", flush=True)
    results: list[BargeInResult] = []
    attempt = 0
    while sum(r.valid for r in results) < trials and attempt < 2 * trials:
        delay = 0.5 + 0.5 * (attempt % trials) / max(trials - 1, 1)
        r = await barge_in(url, mode, clips[attempt % len(clips)], PROMPTS[attempt % len(PROMPTS)], delay)
        attempt += 1
        results.append(r)
        print(
            f"  {r.clip:24s} onset {r.delay_s:.2f} s into the reply   audio stops {fmt_ms(r.flush_s):>7s} "
            f"(rtp {fmt_ms(r.flush_rtp_s):>7s})   "
            f"interrupted {fmt_ms(r.interrupted_s):>7s}   speech start {fmt_ms(r.vad_s):>7s}   "
            f"heard {r.heard[:30]!r}  {r.note}",
            flush=True,
        )
    return results


async def run(args: argparse.Namespace) -> int:
    use_loopback_only()  # the client's candidates too: nothing leaves loopback
    try:
        clips, skipped = english_clips(args.audio_dir)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    if len(clips) < 2:
        print(f"need at least 2 usable clips in {args.audio_dir}/en, found {len(clips)}", file=sys.stderr)
        return 1
    chosen = clips[: args.clips]
    # Barge-in clips: the shortest, since each trial waits for the whole clip to be played and transcribed.
    short = sorted(clips, key=lambda c: c.end_s - c.onset_s)[:4]
    print(f"clips ({len(chosen)} of {len(clips)} usable; skipped: {', '.join(skipped) or 'none'})")
    for c in chosen:
        print(f"  {c.name:26s} {c.duration_s:4.1f} s  speech {c.onset_s:.3f}-{c.end_s:.3f} s  {c.transcript[:50]!r}")

    load_before = os.getloadavg()
    started = time.monotonic()
    async with serving(args.url) as url:
        warmup = clips[args.clips % len(clips)] if args.warmup else None
        gaps_before = await scrape(url)
        turns = await measure_turns(url, args.mode, chosen, warmup)
        # Outgoing pacing while the models ran (the greeting and replies play while later ones are computed).
        pacing = gap_p99(gaps_before, await scrape(url))
        barges = await measure_barge_ins(url, args.mode, short, args.barge_ins or len(chosen))

    summary = summarize(turns, barges)
    command = " ".join([".venv/bin/python -m bench.latency", *map(shlex.quote, sys.argv[1:])])
    where = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    load = os.getloadavg()
    where += f"; load average {load_before[0]:.1f} before, {load[0]:.1f} after (other processes share the cores)"
    print_table(summary, command, where, args.mode, time.monotonic() - started)
    print(f"outgoing frame gap during the voice-to-voice turns: p99 {pacing[0]}, {100 * pacing[1]:.1f}% over 30 ms")
    return 0


def main() -> int:
    about = "Voice-to-voice and barge-in latency of a Parley server, measured from outside."
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=about)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO_DIR, help=AUDIO_DIR_HELP)
    parser.add_argument("--clips", type=int, default=8, help="voice-to-voice turns (default 8)")
    parser.add_argument("--barge-ins", type=int, default=0, help="barge-in trials (default: as many as --clips)")
    parser.add_argument("--url", help="measure a server that is already running instead of starting one")
    parser.add_argument("--mode", choices=("interview", "chat"), default="chat",
                        help="persona (default chat: short greeting, 700 ms turn end; interview 1300)")  # fmt: skip
    parser.add_argument("--warmup", type=int, choices=(0, 1), default=1,
                        help="play one uncounted turn first (default 1)")  # fmt: skip
    args = parser.parse_args()
    if args.clips < 1:
        parser.error("--clips must be at least 1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
