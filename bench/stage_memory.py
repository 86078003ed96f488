"""Memory of one embedded stage alone, run many times with inputs of varying size: where a server's growth
comes from, without WebRTC or the other stages in the way.

    .venv/bin/python -m bench.stage_memory whisper|piper|llm [--runs 240] [--lengths random|few]

- ``whisper``: transcriptions of 0.8-7 s of audio (``--lengths few``: only 4 lengths);
- ``piper``: sentences of different lengths;
- ``llm``: two-turn conversations: a prefill of the words so far, a short reply, a warm-up, then ``forget``.

Every eighth of the runs it prints the process's resident memory after a garbage collection, and again after
``malloc_trim(0)`` (glibc giving back freed memory it still holds): growth that trimming takes away is freed
memory the allocator keeps; growth that stays is memory still in use (a cache, or a leak).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import random

import numpy as np

SENTENCES = [
    "Hello there, how are you doing today?",
    "That is a very interesting question about distributed systems.",
    "I think the answer depends on the size of the data and on how often it changes.",
    "Yes.",
    "Could you tell me more about what you mean by consistency here, and why it matters for your design?",
]


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(stage: str, runs: int) -> None:
    gc.collect()
    held = rss_mb()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    print(f"{stage} after {runs:4d} runs: RSS {held:7.1f} MB, after malloc_trim {rss_mb():7.1f} MB", flush=True)


async def whisper(runs: int, lengths: str) -> None:
    from server.providers.local.whisper import WhisperSTT

    stt = WhisperSTT(threads=2)
    noise = np.random.default_rng(0).standard_normal(16_000 * 8).astype(np.float32) * 0.05
    rng = random.Random(1)
    report("whisper", 0)
    for run in range(1, runs + 1):
        seconds = rng.choice([1.0, 4.0, 5.5, 6.5]) if lengths == "few" else rng.uniform(0.8, 7.0)
        await stt.transcribe(noise[: int(seconds * 16_000)], "en", languages=("en", "es"))
        if run % max(1, runs // 8) == 0:
            report("whisper", run)


async def piper(runs: int, lengths: str) -> None:
    from server.providers.base import VoiceStyle
    from server.providers.local.tts import PiperTTS

    tts = PiperTTS()
    rng = random.Random(1)
    report("piper", 0)
    for run in range(1, runs + 1):
        async for _ in tts.synthesize(rng.choice(SENTENCES), VoiceStyle()):
            pass
        if run % max(1, runs // 8) == 0:
            report("piper", run)


async def llm(runs: int, lengths: str) -> None:
    from server.providers.local.llama import LlamaChat

    chat = LlamaChat(threads=2)
    system = {"role": "system", "content": "You are a friendly colleague. Answer in one or two short sentences."}
    rng = random.Random(1)
    report("llm", 0)
    for run in range(1, runs + 1):
        conversation = [system]
        for _ in range(2):
            words = " ".join(rng.choice(SENTENCES) for _ in range(2))
            await chat.prefill([*conversation, {"role": "user", "content": words[: len(words) // 2]}])
            asked = [*conversation, {"role": "user", "content": words}]
            reply = "".join([d async for d in chat.stream(asked, temperature=0.6, max_tokens=24)])
            conversation = [*asked, {"role": "assistant", "content": reply}]
            await chat.warm(conversation)
        chat.forget(conversation)
        if run % max(1, runs // 8) == 0:
            report("llm", run)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("whisper", "piper", "llm"))
    parser.add_argument("--runs", type=int, default=240)
    parser.add_argument("--lengths", choices=("random", "few"), default="random")
    args = parser.parse_args()
    await {"whisper": whisper, "piper": piper, "llm": llm}[args.stage](args.runs, args.lengths)


if __name__ == "__main__":
    asyncio.run(main())
