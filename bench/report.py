"""Percentiles and the printed summary (a markdown table that can be pasted into a README)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.trials import BargeInResult, TurnResult

STAGES = ("stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "response_ms")


@dataclass(frozen=True)
class Spread:
    n: int
    p50: float | None
    p95: float | None
    low: float | None
    high: float | None


def spread(values: list[float]) -> Spread:
    """p50/p95 with linear interpolation between samples; with a handful of samples p95 sits near the max."""
    if not values:
        return Spread(0, None, None, None, None)
    a = np.asarray(values, dtype=float)
    return Spread(a.size, float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.min()), float(a.max()))


def breakdown(metrics: list[dict[str, Any]]) -> dict[str, Spread]:
    """The server's own per-turn figures, per stage, in milliseconds."""
    return {k: spread([float(m[k]) for m in metrics if m.get(k) is not None]) for k in STAGES}


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


@dataclass(frozen=True)
class Summary:
    voice: Spread  # seconds, at frame output from the client's jitter buffer (``Recording``)
    voice_rtp: Spread  # the same, at RTP packet arrival
    cutoffs: int
    turns: int
    stages: dict[str, Spread]  # milliseconds
    outside: Spread  # client latency - the server's response_ms: VAD-vs-clip end of speech, transport, jitter
    event_to_audio: Spread  # metrics event -> first loud frame: outbound transport, jitter buffer, quiet onset
    flush: Spread  # seconds
    flush_rtp: Spread
    interrupted: Spread
    vad: Spread
    missed: int
    trials: int
    discarded: int  # barge-in attempts where the bot was not speaking at the onset


def summarize(turns: list[TurnResult], barges: list[BargeInResult]) -> Summary:
    clean = [t for t in turns if t.latency_s is not None]
    valid = [b for b in barges if b.valid]
    return Summary(
        voice=spread([t.latency_s for t in clean if t.latency_s is not None]),
        voice_rtp=spread([t.latency_rtp_s for t in clean if t.latency_rtp_s is not None]),
        cutoffs=len(turns) - len(clean),
        turns=len(turns),
        stages=breakdown([t.metrics for t in clean if t.metrics]),
        outside=spread(
            [
                t.latency_s - t.metrics["response_ms"] / 1000
                for t in clean
                if t.latency_s is not None and t.metrics and t.metrics.get("response_ms") is not None
            ]
        ),  # fmt: skip
        event_to_audio=spread([t.event_to_audio_s for t in clean if t.event_to_audio_s is not None]),
        flush=spread([b.flush_s for b in valid if b.flush_s is not None]),
        flush_rtp=spread([b.flush_rtp_s for b in valid if b.flush_rtp_s is not None]),
        interrupted=spread([b.interrupted_s for b in valid if b.interrupted_s is not None]),
        vad=spread([b.vad_s for b in valid if b.vad_s is not None]),
        missed=sum(b.interrupted_s is None for b in valid),
        trials=len(valid),
        discarded=len(barges) - len(valid),
    )


def _row(figure: str, s: Spread, target: str) -> str:
    return f"| {figure} | {fmt_s(s.p50)} | {fmt_s(s.p95)} | {fmt_s(s.low)} - {fmt_s(s.high)} | {s.n} | {target} |"


def _other(st: dict[str, Spread]) -> str:
    parts = [st[k].p50 for k in STAGES]
    if any(p is None for p in parts):
        return "-"
    stt, llm, tts, response = (float(p) for p in parts)  # type: ignore[arg-type]
    return f"{response - stt - llm - tts:.0f}"


def print_table(summary: Summary, command: str, where: str, mode: str, elapsed_s: float) -> None:
    st = summary.stages

    def ms(key: str, q: str = "p50") -> str:
        value = getattr(st[key], q)
        return "-" if value is None else f"{value:.0f}"

    def pair(s: Spread) -> str:
        return f"p50 {fmt_s(s.p50)}  p95 {fmt_s(s.p95)}"

    print("\n## Summary\n")
    print(f"voice to voice:  {pair(summary.voice)}  (at RTP arrival: {pair(summary.voice_rtp)})  "
          f"{summary.voice.n} clean turns of {summary.turns}, {summary.cutoffs} cut off or unanswered")  # fmt: skip
    print(f"  server stages (p50 / p95 ms): stt {ms('stt_ms')} / {ms('stt_ms', 'p95')}, "
          f"llm first token {ms('llm_first_token_ms')} / {ms('llm_first_token_ms', 'p95')}, "
          f"tts first audio {ms('tts_first_audio_ms')} / {ms('tts_first_audio_ms', 'p95')}, "
          f"response {ms('response_ms')} / {ms('response_ms', 'p95')}")  # fmt: skip
    print(f"  rest of response_ms (response - stt - llm - tts: hang-over not overlapped, waiting for the first "
          f"whole sentence, queueing), p50: {_other(st)} ms")  # fmt: skip
    print(f"  client figure - server response_ms, p50: {fmt_ms(summary.outside.p50)} (of which metrics event -> "
          f"first loud frame at the client: {fmt_ms(summary.event_to_audio.p50)})")  # fmt: skip
    print(f"barge-in, onset -> audio stops:  {pair(summary.flush)}  (at RTP arrival: {pair(summary.flush_rtp)})  "
          f"{summary.flush.n} trials, {summary.missed} without an interrupted event, {summary.discarded} "
          f"discarded (the bot was not speaking at the onset)")  # fmt: skip
    print(f"  onset -> interrupted event: {pair(summary.interrupted)};  "
          f"onset -> speech start event: {pair(summary.vad)}")  # fmt: skip
    print(f"\nwhole run: {elapsed_s:.0f} s\n")
    print(f"Measured with `{command}` ({where}; embedded default models; {mode} mode; loopback). Reply audio is")
    print("timed when aiortc's receiver hands the frame over (after its 80 ms jitter buffer) and, in brackets,")
    print("when its RTP packet arrived, as design/BENCHMARKS.md times it.\n")
    print("| Figure | p50 | p95 | min - max | n | Target |")
    print("|---|---|---|---|---|---|")
    print(_row("End of speech -> first reply audio at the client", summary.voice, "p50 <= 0.80 s, p95 <= 1.20 s"))
    print(_row("  (same, at RTP packet arrival)", summary.voice_rtp, ""))
    print(_row("Speech onset over the bot -> bot audio stops at the client", summary.flush, "p95 <= 0.12 s"))
    print(_row("  (same, at RTP packet arrival)", summary.flush_rtp, ""))
    print(_row("Speech onset over the bot -> `interrupted` event at the client", summary.interrupted, ""))
    print(f"| Server's own breakdown, p50 | STT {ms('stt_ms')} ms, LLM first token {ms('llm_first_token_ms')} ms, "
          f"TTS first audio {ms('tts_first_audio_ms')} ms, response {ms('response_ms')} ms | | | "
          f"{st['response_ms'].n} | |")  # fmt: skip
