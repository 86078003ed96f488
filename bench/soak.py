"""Memory over many calls: does a server that has answered 1,000 calls hold more memory than after 50?

    .venv/bin/python -m bench.soak [--calls 1000] [--concurrency 2] [--every 50] [--remote] [--url URL --pid PID]
                                   [--audio-dir DIR]

Each call is what a person does: it connects (chat mostly; every fifth call is an interview, every seventh a
Spanish lesson), barges in on the greeting (every other call) or lets it finish, says a sentence, waits for
the spoken reply, talks over it (every third call), waits for the bot to finish, and hangs up. ``--concurrency``
calls run at once. Every ``--every`` calls the bench lets the calls in flight finish, waits a second, and reads
the server process's resident memory (``VmRSS`` in ``/proc/PID/status``), its open file descriptors and
threads, and the server's own ``/metrics``.

Speech: English and Spanish clips of a few seconds from ``--audio-dir`` (a folder with ``en/`` and ``es/``
subfolders of 16-bit WAV files named ``*_48k.wav``, for example recordings from LibriSpeech or FLEURS) when
given; otherwise sentences spoken by espeak-ng (installed by the setup), which the server hears as speech too.

Without ``--url`` it starts the server (``python -m server``) on a free loopback port: the embedded default
models, or with ``--remote`` the OpenAI provider pointed at a local OpenAI-compatible stand-in
(``tests/fake_openai.py``), so only Parley's own memory is measured. ``--url`` with ``--pid`` measures a
running server (one worker of a cluster, for example).

It prints one line per sample and, at the end, the growth from the first sample after call ``--every`` to the
last, where in the server's memory mappings it is (``bench/mappings.py``), and the least-squares slope per call
over those samples.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np

from bench import mappings
from bench.serverproc import ServerProcess
from parley.audio import RATE, read_wav
from parley.rtc import CallClient
from server.ice import use_loopback_only

GREETING_S = 60.0
REPLY_S = 90.0
SENTENCES = {
    "en": [
        "I think the most important part of a good design is keeping things simple.",
        "Yesterday I went for a long walk by the river with my sister.",
        "Could you tell me what you like to do on the weekend?",
        "My favourite food is pasta with tomatoes and fresh basil.",
    ],
    "es": ["Me gusta mucho viajar por la costa en verano.", "Hoy hace muy buen tiempo en mi ciudad."],
}


def espeak(text: str, language: str) -> np.ndarray:
    voice = {"en": "en-us", "es": "es"}[language]
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", out.name, text], check=True)
        return read_wav(out.name, RATE)


def speech(audio_dir: Path | None) -> dict[str, list[np.ndarray]]:
    clips: dict[str, list[np.ndarray]] = {}
    for language, sentences in SENTENCES.items():
        paths = sorted((audio_dir / language).glob("*_48k.wav")) if audio_dir else []
        recorded = [read_wav(p, RATE) for p in paths]
        recorded = [level(c) for c in recorded if 1.5 * RATE <= c.size <= 7 * RATE]
        clips[language] = recorded or [espeak(s, language) for s in sentences]
    return clips


def level(clip: np.ndarray, rms: float = 0.07) -> np.ndarray:
    """``clip`` at the level a browser's microphone sends (its automatic gain control: about -23 dBFS RMS). The
    recordings range from -41 to -20 dBFS; the quietest, said over the bot's reply, is rightly not taken for a
    barge-in (it is as loud as an echo), and the call then waited for words that never came."""
    x = clip.astype(np.float32)
    gain = rms * 32768 / max(float(np.sqrt(np.mean(x**2))), 1.0)
    return np.clip(x * gain, -32768, 32767).astype(np.int16)


def proc_figures(pid: int) -> dict[str, float]:
    figures = {"fds": float(len(os.listdir(f"/proc/{pid}/fd")))}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key == "VmRSS":
            figures["rss_mb"] = int(value.split()[0]) / 1024
        elif key == "Threads":
            figures["threads"] = float(value)
    return figures


async def server_metrics(url: str, names: tuple[str, ...]) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[name] = float(value)
    return found


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    replies: int = 0
    barge_ins: int = 0


def _is(kind: str, **fields: str) -> object:
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


async def one_call(url: str, index: int, clips: dict[str, list[np.ndarray]], tally: Tally) -> None:
    rng = random.Random(index)
    mode, language = ("interview", "en") if index % 5 == 0 else ("language", "es") if index % 7 == 0 else ("chat", "en")
    try:
        call = await connect(url, mode, language)
    except (TimeoutError, RuntimeError) as exc:
        tally.failed += 1
        print(f"  call {index} failed to connect: {exc}", flush=True)
        return
    try:
        started = time.monotonic()
        pause = np.zeros(int(1.5 * RATE), dtype=np.int16)
        if index % 2:  # talk over the greeting, once it is heard
            await wait_audible(call, started)
            # As a person would, a second in: from the first word on, their voice is taken for the bot's echo.
            await asyncio.sleep(1.0)
            call.mic.play(np.concatenate([rng.choice(clips[language]), pause]))
        else:
            await call.wait_for(_is("state", state="listening"), GREETING_S, started)
            call.mic.play(np.concatenate([rng.choice(clips[language]), pause]))
        heard_t, _ = await call.wait_for(_is("transcript", role="user"), REPLY_S, started)
        speaking_t, _ = await call.wait_for(_is("state", state="speaking"), REPLY_S, heard_t)
        tally.replies += 1
        if index % 3 == 0:  # talk over the reply (it may be over already: then this is just the next turn)
            await asyncio.sleep(0.5)
            call.mic.play(np.concatenate([rng.choice(clips[language]), pause]))
            heard_t, _ = await call.wait_for(_is("transcript", role="user"), REPLY_S, speaking_t)
            if call.find(_is("interrupted"), speaking_t) is not None:
                tally.barge_ins += 1
            speaking_t, _ = await call.wait_for(_is("state", state="speaking"), REPLY_S, heard_t)
        await call.wait_for(_is("state", state="listening"), REPLY_S, speaking_t)
        if index % 4 == 0:
            await call.end()  # asks for the end (and an interview's scorecard); otherwise just hang up
        tally.done += 1
    except (TimeoutError, RuntimeError) as exc:
        tally.failed += 1
        print(f"  call {index} failed: {type(exc).__name__} {exc}", flush=True)
    finally:
        await call.close()


async def connect(url: str, mode: str, language: str) -> CallClient:
    """A connected call, retried while the server is still closing the calls just hung up (503 at capacity)."""
    for _ in range(40):
        call = CallClient(url, mode, language)
        try:
            await call.connect()
            return call
        except RuntimeError as exc:
            await call.close()
            if "(503)" not in str(exc):
                raise
            await asyncio.sleep(0.25)
    raise RuntimeError("the server stayed at capacity")


async def wait_audible(call: CallClient, since: float) -> None:
    # The greeting's `state: speaking` may go before the events channel opens: listen for its audio instead.
    deadline = time.monotonic() + GREETING_S
    while call.recording.first_loud_after(since) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no greeting audio")
        await asyncio.sleep(0.05)


def slope(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return 0.0
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    return float(np.polyfit(x, y, 1)[0])


async def soak(url: str, pid: int, calls: int, concurrency: int, every: int, clips: dict) -> list[dict]:
    tally = Tally()
    samples: list[dict] = []
    warm: dict[int, mappings.Mapping] = {}  # the server's memory mappings after the warm-up (call ``every``)
    names = ("parley_active_calls", "parley_calls_total", "parley_barge_ins_total", "parley_live_calls",
             "parley_live_replies", "process_resident_memory_bytes", "process_open_fds",
             "parley_malloc_in_use_bytes", "parley_malloc_free_bytes", "parley_python_blocks")  # fmt: skip

    async def sample(at: int) -> None:
        await asyncio.sleep(1.0)  # the last hang-ups close on the server
        row = {"calls": at, **proc_figures(pid), **(await server_metrics(url, names)), "failed": tally.failed}
        samples.append(row)
        if at == every:
            warm.update(mappings.read(pid))
        counts = ("parley_l", "parley_python")
        extra = "".join(f", {k.removeprefix('parley_')} {v:.0f}" for k, v in row.items() if k.startswith(counts))
        extra += "".join(f", {k.removeprefix('parley_')[:-6]} {v / 2**20:.0f} MB" for k, v in row.items()
                         if k.startswith("parley_malloc"))  # fmt: skip
        print(f"after {at:5d} calls: RSS {row['rss_mb']:7.1f} MB, fds {row['fds']:.0f}, threads "
              f"{row['threads']:.0f}{extra}; replies {tally.replies}, barge-ins {tally.barge_ins}, "
              f"failed {tally.failed}", flush=True)  # fmt: skip

    await sample(0)
    started = time.monotonic()
    for batch_start in range(0, calls, every):
        batch = range(batch_start, min(calls, batch_start + every))
        queue = list(batch)

        async def worker(queue: list[int] = queue) -> None:
            while queue:
                await one_call(url, queue.pop(0), clips, tally)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await sample(batch.stop)
    print(f"{calls} calls in {time.monotonic() - started:.0f} s")
    if warm and calls > every:
        print(f"resident memory from call {every} to {calls}, by mapping:", *mappings.growth(warm, mappings.read(pid)),
              sep="\n")  # fmt: skip
    return samples


def summary(samples: list[dict], every: int) -> None:
    after_warmup = [(s["calls"], s["rss_mb"]) for s in samples if s["calls"] >= every]
    if len(after_warmup) < 2:
        return
    first, last = after_warmup[0], after_warmup[-1]
    print(
        f"warm-up (calls 0-{first[0]}): {first[1] - samples[0]['rss_mb']:+.1f} MB; from call {first[0]} to "
        f"{last[0]}: {last[1] - first[1]:+.1f} MB; slope {slope(after_warmup) * 1000:+.1f} MB per 1,000 calls"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=0, help="shorter replies (PARLEY_LLM_MAX_TOKENS)")
    parser.add_argument("--remote", action="store_true", help="OpenAI providers on a local stand-in")
    parser.add_argument("--url", help="a running server (with --pid)")
    parser.add_argument("--pid", type=int, help="the running server's process id, to read its memory")
    parser.add_argument("--audio-dir", type=Path, help="recorded speech: en/ and es/ folders of *_48k.wav")
    args = parser.parse_args()
    use_loopback_only()
    clips = speech(args.audio_dir)
    if args.url:
        if not args.pid:
            parser.error("--url needs --pid")
        summary(await soak(args.url, args.pid, args.calls, args.concurrency, args.every, clips), args.every)
        return
    env = {"PARLEY_MAX_CALLS": str(max(2, args.concurrency)), "PARLEY_OFFERS_PER_MINUTE": "100000",
           "PARLEY_CALLS_PER_ADDRESS": "0", "PARLEY_LOG_LEVEL": "WARNING", "PARLEY_DRAIN_S": "0"}  # fmt: skip
    if args.max_tokens:
        env["PARLEY_LLM_MAX_TOKENS"] = str(args.max_tokens)
    fake = None
    if args.remote:
        from tests.fake_openai import KEY, FakeOpenAI

        fake = await FakeOpenAI(
            transcript="I like long walks by the river.", reply="Oh nice. Where do you walk?"
        ).start()
        env |= {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai",
                "PARLEY_LLM": "openai", "PARLEY_TTS": "openai", "PARLEY_JUDGE": "offline"}  # fmt: skip
    server = ServerProcess(env)
    server.start()
    try:
        print(f"server {server.url} (pid {server.pid}, log {server.log_path}) healthy after "
              f"{await server.wait_healthy():.1f} s", flush=True)  # fmt: skip
        samples = await soak(server.url, server.pid, args.calls, args.concurrency, args.every, clips)
        summary(samples, args.every)
    finally:
        server.stop()
        if fake is not None:
            await fake.close()


if __name__ == "__main__":
    asyncio.run(main())
