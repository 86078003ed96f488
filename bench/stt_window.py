"""Whisper base with the full 30 s encoder window vs the window the server uses (utterance + 2 s, >= 5 s).

    .venv/bin/python -m bench.stt_window [--audio-dir DIR] [--languages en,fr,de,...]

Prints, per clip, both transcripts where they differ, how many are identical, and the p50 time of each.
It reads recorded speech that is not in the repository: ``DIR/<language>/*_16k.wav`` (16-bit mono, 16 kHz),
e.g. FLEURS, LibriSpeech or Common Voice clips (see "Recorded speech" in bench/README.md). A language
without a folder is skipped; with no clips at all nothing is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from bench.clips import AUDIO_DIR_HELP, DEFAULT_AUDIO_DIR
from parley.audio import read_wav
from server.providers.local.whisper import MAX_WINDOW_S, WhisperSTT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO_DIR, help=AUDIO_DIR_HELP)
    parser.add_argument("--languages", default="en,fr,de,es,ru,it,nl,pt")
    parser.add_argument("--per-language", type=int, default=5)
    args = parser.parse_args()
    stt = WhisperSTT()
    full_times, short_times, same, total = [], [], 0, 0
    for language in args.languages.split(","):
        for wav in sorted((args.audio_dir / language).glob("*_16k.wav"))[: args.per_language]:
            audio = read_wav(wav, 16_000).astype(np.float32) / 32768
            seconds = audio.size / 16_000
            if seconds > MAX_WINDOW_S - 2:
                continue
            started = time.monotonic()
            full = stt.transcribe_sync(audio, language, window_frames=MAX_WINDOW_S * 100)
            full_times.append(time.monotonic() - started)
            started = time.monotonic()
            short = stt.transcribe_sync(audio, language)
            short_times.append(time.monotonic() - started)
            total += 1
            same += full == short
            print(f"{wav.name:42} {seconds:4.1f}s  30 s {full_times[-1]:.2f}s  short {short_times[-1]:.2f}s")
            if full != short:
                print(f"    30 s : {full}\n    short: {short}")
    if total:
        print(f"\n{same} of {total} clips transcribed identically")
        full_p50, short_p50 = statistics.median(full_times), statistics.median(short_times)
        print(f"p50 30 s window {full_p50:.2f} s, short window {short_p50:.2f} s")


if __name__ == "__main__":
    main()
