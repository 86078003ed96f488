"""Turn-taking on real recordings: sounds that stop the bot when they should not, and thinking pauses that end
the person's turn too early.

    .venv/bin/python -m bench.turn_taking [--audio-dir DIR] [--url URL] [--pairs 4] [--repeats 1]

It plays recordings that are not in the repository: ``DIR/nonspeech/`` (noise_koala, esc50_thunderstorm,
esc50_car_horn, music_vibe_ace_10s, bird_robin, laughter, each as ``<name>_48k.wav``, 16-bit mono) and the
English speech clips of ``DIR/en/`` (``<name>_48k.wav`` with ``<name>.txt``). "Recorded speech" in
bench/README.md says where to find such clips (ESC-50 for the sounds; LibriSpeech, FLEURS, Common Voice for
speech). Without them it stops with a message.

Without ``--url`` it starts the real server (embedded default models) the way ``bench.latency`` does.

1. **False interruptions** (chat mode, a fresh call each): a typed question that gets a long spoken reply,
   then, while the bot speaks, one of the ``nonspeech/`` clips (noise, thunderstorm, car horn, music, bird,
   laughter) played into the microphone, or no clip but the bot's own voice fed back into the microphone
   150 ms later at -20 or -10 dB from the start of the call (loudspeakers with no echo cancellation).
   Counted per trial: *interrupted* (the server cut its reply: a false barge-in) and *paused* (the bot held
   its audio for a possible interruption and went on: the server's ``parley_false_starts_total``).
2. **Pause cut-offs** (interview mode, a fresh call each): two English clips joined by a silence of 0.8 or
   1.2 s, played as one answer. A cut-off is a turn the server ended inside the pause: its ``speech end``
   event came before the second part began.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np

from bench.clips import AUDIO_DIR_HELP, DEFAULT_AUDIO_DIR, Clip, english_clips
from bench.serverproc import serving
from bench.side_by_side import closing_line
from bench.trials import TURN_TIMEOUT, is_, open_call
from parley.audio import RATE, read_wav
from server.ice import use_loopback_only

NONSPEECH = ["noise_koala", "esc50_thunderstorm", "esc50_car_horn", "music_vibe_ace_10s", "bird_robin", "laughter"]
ECHO_DB = (-20, -10)
ECHO_SECONDS = 6.0
PROMPT = "Tell me, in a few sentences, about a city you like and what you would do there on a sunny day."


async def false_starts(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        found = re.search(r"^parley_false_starts_total (\S+)$", await resp.text(), re.M)
    return float(found.group(1)) if found else 0.0


async def over_reply(url: str, sound: np.ndarray | None, echo_db: float | None) -> tuple[bool, int, float]:
    """One trial: returns (interrupted, pauses, seconds of the reply the sound or echo overlapped)."""
    call = await open_call(url, "chat", 10 ** (echo_db / 20) if echo_db is not None else 0.0)
    try:
        paused_before = await false_starts(url)
        asked = time.monotonic()
        call.send({"type": "text", "text": PROMPT})
        speaking_t, _ = await call.wait_for(is_("state", state="speaking"), TURN_TIMEOUT, asked)
        if sound is not None:
            call.mic.play(sound)
            await asyncio.wait_for(call.mic.finished.wait(), sound.size / RATE + 10)
        else:
            await asyncio.sleep(ECHO_SECONDS)
        ended = time.monotonic()
        done = call.find(is_("transcript", role="assistant"), asked)
        overlap = (done[0] if done else ended) - speaking_t
        interrupted = call.find(is_("interrupted"), asked) is not None
        return interrupted, round(await false_starts(url) - paused_before), overlap
    finally:
        await call.close()


async def paused_answer(url: str, first: Clip, second: Clip, pause_s: float) -> bool:
    """One trial: True when the server ended the turn inside the pause."""
    head = first.pcm[: int(first.end_s * RATE)]
    tail = second.pcm[int(second.onset_s * RATE) :]
    answer = np.concatenate([head, np.zeros(int(pause_s * RATE), dtype=np.int16), tail])
    call = await open_call(url, "interview")
    try:
        call.mic.play(np.concatenate([answer, np.zeros(3 * RATE, dtype=np.int16)]))
        await asyncio.wait_for(call.mic.finished.wait(), answer.size / RATE + 15)
        assert call.mic.play_started_at is not None
        second_starts = call.mic.play_started_at + (head.size / RATE) + pause_s
        ended = call.find(is_("speech", event="end"), call.mic.play_started_at)
        return ended is not None and ended[0] < second_starts
    finally:
        await call.close()


async def run(args: argparse.Namespace) -> int:
    use_loopback_only()
    nonspeech = {name: read_wav(args.audio_dir / "nonspeech" / f"{name}_48k.wav") for name in NONSPEECH}
    try:
        clips, _ = english_clips(args.audio_dir)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    pairs = [(clips[i], clips[(i + 1) % len(clips)]) for i in range(min(args.pairs, len(clips)))]
    load_before = os.getloadavg()
    async with serving(args.url) as url:
        print("\nFalse interruptions (chat mode, a sound over a spoken reply)")
        print(f"  {'sound':28s} {'interrupted':>11s} {'paused':>6s} {'overlap':>8s}")
        rows: list[tuple[str, bool, int]] = []
        trials: list[tuple[str, np.ndarray | None, float | None]] = [(n, pcm, None) for n, pcm in nonspeech.items()]
        trials += [(f"own voice, echo {db} dB", None, db) for db in ECHO_DB]
        trials = [trial for trial in trials for _ in range(args.repeats)]  # each a fresh call
        for name, sound, echo_db in trials:
            interrupted, pauses, overlap = await over_reply(url, sound, echo_db)
            rows.append((name, interrupted, pauses))
            print(f"  {name:28s} {'yes' if interrupted else 'no':>11s} {pauses:6d} {overlap:7.1f}s", flush=True)
        print(f"  false barge-ins: {sum(r[1] for r in rows)} of {len(rows)} trials; "
              f"brief pauses: {sum(r[2] for r in rows)}")  # fmt: skip

        print("\nPause cut-offs (interview mode, two clips joined by a thinking pause)")
        for pause_s in args.pauses:
            cuts = [await paused_answer(url, a, b, pause_s) for a, b in pairs]
            print(f"  pause {pause_s:.1f} s: {sum(cuts)} of {len(cuts)} answers cut off", flush=True)
    closing_line("bench.turn_taking", load_before)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO_DIR, help=AUDIO_DIR_HELP)
    parser.add_argument("--url", help="measure a server that is already running instead of starting one")
    parser.add_argument("--pairs", type=int, default=4, help="answers per pause length (default 4)")
    parser.add_argument("--repeats", type=int, default=1, help="trials per sound over a reply (default 1)")
    parser.add_argument("--pauses", type=lambda s: [float(x) for x in s.split(",")], default=[0.8, 1.2])
    args = parser.parse_args()
    if not (args.audio_dir / "nonspeech").is_dir():
        print(f"{args.audio_dir}/nonspeech is absent: nothing to measure (see 'Recorded speech' in bench/README.md)",
              file=sys.stderr)  # fmt: skip
        return 1
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
