"""Thinking pauses inside sentences: how often the server takes one for the end of the turn, side by side with
another checkout (today's main), on recorded speech in several languages.

    .venv/bin/python -m bench.pauses --baseline ../main [--languages en,es,de] [--clips 4] [--pauses 0.8,1.2,2]
        [--mode chat|language|interview]

Each trial is a fresh call (chat by default) in the clip's language. The clip is split at a natural dip, the widest gap
between two words in the middle of the sentence (Whisper's word timings, embedded model), and the pause is
inserted there, so the voice stops where a person would stop to think. A trial is *cut off* when the server's
``speech end`` came before the person had finished: in the inserted pause, or at a pause of their own later on
(counted apart, as "later"). For the trials that were not cut, *turn end* is the time from the end of the speech
(Silero) to the ``speech end`` event: how long a finished turn waits before it is answered.

The two servers (this checkout and ``--baseline``) run at once and take the trials in turn, so both see the same
machine load. Clips come from ``--audio-dir`` (``<lang>/<name>_48k.wav`` and ``_16k.wav``; see "Recorded speech" in
bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import side_by_side
from bench.clips import AUDIO_DIR_HELP, DEFAULT_AUDIO_DIR, speech_bounds
from bench.side_by_side import both, closing_line
from bench.trials import is_, open_call
from parley.audio import RATE, read_wav
from server.ice import use_loopback_only

MIN_WORDS = 5  # a sentence long enough to have a middle


@dataclass(frozen=True)
class Split:
    name: str
    language: str
    head: np.ndarray  # int16 48 kHz, up to the middle of the dip
    tail: np.ndarray  # from the middle of the dip on
    gap_s: float  # the dip's own silence, counted in the pause
    speech_end_s: float  # where the speech ends in the tail
    words: str  # the words before the split


def splits(audio_dir: Path, languages: list[str], per_language: int) -> list[Split]:
    """Clips split at their widest word gap between 30 % and 70 % of the speech."""
    from faster_whisper import WhisperModel

    from server.audio.vad import SileroModel
    from server.providers.local import weights

    whisper = WhisperModel(str(weights.ensure(weights.WHISPER_BASE[0]).parent), device="cpu", compute_type="int8")
    silero = SileroModel(weights.ensure(weights.SILERO_VAD))
    found: list[Split] = []
    for language in languages:
        taken = 0
        for path in sorted((audio_dir / language).glob("*_16k.wav")):
            if taken == per_language:
                break
            audio = read_wav(path, 16_000).astype(np.float32) / 32768
            segments, _ = whisper.transcribe(audio, language=language, word_timestamps=True)
            words = [w for s in segments for w in s.words]
            if len(words) < MIN_WORDS or audio.size / 16_000 > 12:
                continue
            start, end = words[0].start, words[-1].end
            middle = [i for i in range(len(words) - 1) if 0.3 <= (words[i].end - start) / (end - start) <= 0.7]
            if not middle:
                continue
            i = max(middle, key=lambda k: words[k + 1].start - words[k].end)
            cut_s = (words[i].end + words[i + 1].start) / 2
            pcm = read_wav(path.with_name(path.name.replace("_16k", "_48k")), RATE)
            cut = int(cut_s * RATE)
            said = "".join(w.word for w in words[: i + 1]).strip()
            gap = words[i + 1].start - words[i].end
            speech_end_s = speech_bounds(pcm, silero)[1]
            found.append(Split(path.stem, language, pcm[:cut], pcm[cut:], gap, speech_end_s - cut_s, said))
            taken += 1
    return found


Outcome = tuple[str, float | None]  # "pause", "later" (cut off there) or "kept"; the turn end when kept


async def trial(url: str, split: Split, pause_s: float, mode: str) -> Outcome:
    silence = np.zeros(int(max(pause_s - split.gap_s, 0) * RATE), dtype=np.int16)
    call = await open_call(url, mode, language=split.language)
    try:
        call.mic.play(np.concatenate([split.head, silence, split.tail, np.zeros(5 * RATE, dtype=np.int16)]))
        duration = (split.head.size + silence.size + split.tail.size) / RATE + 5
        await asyncio.wait_for(call.mic.finished.wait(), duration + 15)
        assert call.mic.play_started_at is not None
        second_starts = call.mic.play_started_at + (split.head.size + silence.size) / RATE
        speech_ends = second_starts + split.speech_end_s
        ended = call.find(is_("speech", event="end"), call.mic.play_started_at)
        if ended is None:
            return "kept", None
        if ended[0] < second_starts:
            return "pause", None
        if ended[0] < speech_ends - 0.1:  # before their last words (32 ms windows, a little slack)
            return "later", None
        return "kept", ended[0] - speech_ends
    finally:
        await call.close()


def summary(rows: list[Outcome]) -> str:
    at_pause = sum(kind == "pause" for kind, _ in rows)
    later = sum(kind == "later" for kind, _ in rows)
    ends = sorted(end for kind, end in rows if end is not None)
    median = f"{statistics.median(ends):.2f} s" if ends else "-"
    return (f"{at_pause + later:2d} of {len(rows)} cut off ({at_pause} in the pause, {later} later); "
            f"turn end after the speech, median {median}")  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    use_loopback_only()
    chosen = splits(args.audio_dir, args.languages, args.clips)
    if not chosen:
        print(f"no clips in {args.audio_dir} for {args.languages}", file=sys.stderr)
        return 1
    for split in chosen:
        print(f"  {split.language} {split.name}: pause after {split.words!r} (gap {split.gap_s * 1000:.0f} ms)")
    results: dict[str, dict[float, list[Outcome]]] = {}
    load_before = os.getloadavg()
    async with both(args.baseline) as servers:
        for pause_s in args.pauses:
            for split in chosen:
                for name, server in servers.items():  # in turn: both see the same load
                    row = await trial(server.url, split, pause_s, args.mode)
                    results.setdefault(name, {}).setdefault(pause_s, []).append(row)
                    print(f"  {pause_s:.1f} s {split.language} {split.name[:30]:30s} {name:14s} {row[0]:5s} "
                          f"{'' if row[1] is None else f'{row[1]:.2f} s'}", flush=True)  # fmt: skip
    print(f"\nPauses inside sentences ({args.mode} mode)")
    for name in results:
        for pause_s, rows in results[name].items():
            print(f"  {name:14s} pause {pause_s:.1f} s: {summary(rows)}")
        everything = [row for rows in results[name].values() for row in rows]
        print(f"  {name:14s} all pauses: {summary(everything)}")
    closing_line("bench.pauses", load_before)
    return 0


def main() -> int:
    parser = side_by_side.parser(__doc__)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO_DIR, help=AUDIO_DIR_HELP)
    parser.add_argument("--languages", type=lambda s: s.split(","), default=["en", "es", "de"])
    parser.add_argument("--clips", type=int, default=4, help="clips per language (default 4)")
    parser.add_argument("--mode", default="chat", choices=["chat", "language", "interview"])
    parser.add_argument("--pauses", type=lambda s: [float(x) for x in s.split(",")], default=[0.8, 1.2, 2.0])
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
