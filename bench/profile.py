"""Summaries of py-spy's raw (collapsed-stack) output: where a process's CPU went, as shares of samples."""

from __future__ import annotations

import re
from collections import Counter

_LINE = re.compile(r":\d+\)$")  # "fn (file.py:123)" -> "fn (file.py)"
IDLE = ("select (selectors.py)", "poll (selectors.py)")
# What a sample was doing: the innermost frame that matches, searched from the leaf outwards.
PARTS = (
    ("Silero VAD (onnxruntime)", ("onnxruntime",)),
    ("SRTP (pylibsrtp)", ("pylibsrtp",)),
    ("Opus encode", ("OpusEncoder.encode",)),
    ("Opus decode", ("OpusDecoder.decode",)),
    ("inbound resampling and windows (ours, av)", ("server/audio/inbound.py",)),
    ("outgoing track (ours)", ("server/audio/outbound.py",)),
    ("VAD state machine and session (ours)", ("server/audio/vad.py", "server/session.py")),
    ("replies, events, HTTP (ours)", ("server/",)),
    ("thread hand-offs (executor, queues)", ("concurrent/futures", "threading.py", "queue.py")),
    ("aiortc RTP/RTCP/ICE (Python)", ("aiortc/", "aioice/")),
    ("event loop and sockets", ("asyncio/", "selectors.py")),
)


def _frames(stack: str) -> list[str]:
    return [_LINE.sub(")", f) for f in stack.split(";")]


def _short(frame: str) -> str:
    name, _, path = frame.partition(" (")
    parts = path.rstrip(")").split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def _part(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in PARTS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarize(raw: str, top: int = 12) -> str:
    """Shares of the busy samples by part of the pipeline, then the top functions by own time (the innermost
    Python frame). Samples waiting in the event loop's selector are idle and counted apart."""
    own: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        total += n
        leaf = _short(frames[-1])
        if leaf in IDLE:
            idle += n
            continue
        own[leaf] += n
        parts[_part(frames)] += n
    busy = total - idle
    if not busy:
        return "(no busy samples)"
    out = [f"{total} samples, {idle / total:.0%} idle in the selector; of the busy ones, by part:"]
    out += [f"    {n / busy:6.1%}  {name}" for name, n in parts.most_common()]
    out.append("  top functions by own time:")
    out += [f"    {n / busy:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)
