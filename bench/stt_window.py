"""Whisper base with the full 30 s encoder window vs a window just longer than the utterance.

    .venv/bin/python -m bench.stt_window [--audio-dir ../shared/audio] [--languages en,fr,de,...]

Prints, per clip, both transcripts where they differ, and the p50 time of each setting.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from client.call import read_wav
from server.providers.local import weights
from server.providers.local.whisper import encoder_window


def transcribe(model, audio: np.ndarray, language: str, window: int | None) -> tuple[float, str]:
    started = time.monotonic()
    segments, _ = model.transcribe(
        audio, language=language, beam_size=1, temperature=0.0, condition_on_previous_text=False,
        without_timestamps=True, max_new_tokens=160, vad_filter=False, chunk_length=window,
    )  # fmt: skip
    text = " ".join(s.text.strip() for s in segments)  # the generator decodes as it is read
    return time.monotonic() - started, text


def main() -> None:
    from faster_whisper import WhisperModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--audio-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "audio")
    parser.add_argument("--languages", default="en,fr,de,es,ru,it,nl,pt")
    parser.add_argument("--per-language", type=int, default=5)
    args = parser.parse_args()
    model_dir = weights.ensure(weights.WHISPER_BASE[0]).parent
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2, local_files_only=True)
    full_times, short_times, same, total = [], [], 0, 0
    for language in args.languages.split(","):
        for wav in sorted((args.audio_dir / language).glob("*_16k.wav"))[: args.per_language]:
            audio = read_wav(wav, 16_000).astype(np.float32) / 32768
            seconds = audio.size / 16_000
            if seconds > 28:
                continue
            t_full, full = transcribe(model, audio, language, None)
            t_short, short = transcribe(model, audio, language, encoder_window(seconds))
            full_times.append(t_full)
            short_times.append(t_short)
            total += 1
            same += full == short
            flag = "same" if full == short else "DIFF"
            print(f"{wav.name:40} {seconds:4.1f}s  30 s window {t_full:.2f}s  short {t_short:.2f}s  {flag}")
            if full != short:
                print(f"    30 s : {full}\n    short: {short}")
    if total:
        print(f"\n{same} of {total} clips transcribed identically")
        print(f"p50 30 s window {statistics.median(full_times):.2f} s, short window {statistics.median(short_times):.2f} s")


if __name__ == "__main__":
    main()
