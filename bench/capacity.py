"""How many calls one machine holds when the models are remote, so only Parley's own cost is measured.

    .venv/bin/python -m bench.capacity [--levels 10,20,30,40] [--seconds 10] [--sequential 500]

An OpenAI-compatible server in this process answers at once (tests/fake_openai.py); the Parley server runs as
its own process with every stage on it. At each level that many calls are held open, each typing a question
every few seconds so replies keep playing, and the server's own metrics give the outgoing frame pacing
(gaps between 20 ms frames; target p99 < 30 ms) and the inbound frames received (none dropped: 50 per second
per call). CPU and memory of the server process are read from /proc. Then N calls in sequence give the
memory growth. The clients run in this process on the same cores, so the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp

from bench.serverproc import ServerProcess
from client.call import CallClient
from server.ice import use_loopback_only
from tests.fake_openai import KEY, FakeOpenAI

GAP_BUCKETS = (0.015, 0.021, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2, 0.5)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def scrape(url: str) -> dict[str, float]:
    """The frame-gap histogram's cumulative bucket counts and the inbound frame counter."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parley_frame_gap_seconds_bucket"):
            values["le=" + line.split('le="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(("parley_frame_gap_seconds_count", "parley_inbound_frames_total")):
            values[line.split(" ")[0]] = float(line.rsplit(" ", 1)[1])
    return values


def gap_p99(before: dict[str, float], after: dict[str, float]) -> tuple[str, float]:
    """The smallest bucket holding 99% of the gaps in the window, and the share of gaps over 30 ms."""
    total = after["parley_frame_gap_seconds_count"] - before.get("parley_frame_gap_seconds_count", 0)
    if total <= 0:
        return "n/a", 0.0
    p99 = "> 0.5"
    for le in GAP_BUCKETS:
        key = f"le={le}"
        if after[key] - before.get(key, 0) >= 0.99 * total:
            p99 = f"<= {le * 1000:.0f} ms"
            break
    under_30 = after["le=0.03"] - before.get("le=0.03", 0)
    return p99, 1 - under_30 / total


async def talk(call: CallClient, stop: asyncio.Event, index: int) -> None:
    await asyncio.sleep(index * 0.05)
    while not stop.is_set():
        call.send({"type": "text", "text": "tell me something"})
        try:
            await asyncio.wait_for(stop.wait(), 3.0)
        except TimeoutError:
            pass


async def hold(url: str, pid: int, calls: list[CallClient], level: int, seconds: float) -> dict[str, object]:
    while len(calls) < level:
        call = CallClient(url, mode="chat")
        await call.connect()
        calls.append(call)
    await asyncio.sleep(2.0)  # greetings start; the level settles
    stop = asyncio.Event()
    talkers = [asyncio.create_task(talk(c, stop, i)) for i, c in enumerate(calls)]
    before, cpu0, t0 = await scrape(url), cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    after, cpu1, t1 = await scrape(url), cpu_seconds(pid), time.monotonic()
    stop.set()
    await asyncio.gather(*talkers)
    p99, over_30 = gap_p99(before, after)
    inbound = after["parley_inbound_frames_total"] - before.get("parley_inbound_frames_total", 0)
    expected = level * 50 * (t1 - t0)
    cores = (cpu1 - cpu0) / (t1 - t0)
    return {"calls": level, "gap_p99": p99, "gaps_over_30ms": over_30, "inbound": inbound / expected,
            "cores": cores, "rss": rss_mb(pid)}  # fmt: skip


async def sequential(url: str, pid: int, count: int) -> tuple[float, float]:
    for i in range(count + 20):
        if i == 20:  # after a warm-up
            start_rss = rss_mb(pid)
        call = CallClient(url, mode="chat")
        await call.connect()
        await call.close()
    await asyncio.sleep(2.0)
    return start_rss, rss_mb(pid)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,20,30,40")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sequential", type=int, default=500)
    args = parser.parse_args()
    use_loopback_only()
    fake = await FakeOpenAI(reply="Sure. Here is a short answer for you.").start()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_MAX_CALLS": "1000", "PARLEY_OFFERS_PER_MINUTE": "100000",
           "PARLEY_IDLE_S": "3600", "PARLEY_LOG_LEVEL": "WARNING"}  # fmt: skip
    server = ServerProcess(env)
    server.start()
    rows: list[dict[str, object]] = []
    calls: list[CallClient] = []
    try:
        await server.wait_healthy(60)
        print(f"server up; rss {rss_mb(server.pid):.0f} MB")
        for level in (int(x) for x in args.levels.split(",")):
            row = await hold(server.url, server.pid, calls, level, args.seconds)
            rows.append(row)
            print(f"{level:3d} calls: frame gap p99 {row['gap_p99']}, gaps > 30 ms {row['gaps_over_30ms']:.2%}, "
                  f"inbound frames {row['inbound']:.1%} of expected, server CPU {row['cores']:.2f} cores, "
                  f"RSS {row['rss']:.0f} MB", flush=True)  # fmt: skip
        for call in calls:
            await call.close()
        calls.clear()
        if args.sequential:
            before, after = await sequential(server.url, server.pid, args.sequential)
            print(f"{args.sequential} calls in sequence: server RSS {before:.0f} -> {after:.0f} MB "
                  f"({after - before:+.0f} MB)")  # fmt: skip
    finally:
        for call in calls:
            await call.close()
        server.stop()
        await fake.close()
    print("\n| Calls | Frame gap p99 | Gaps > 30 ms | Inbound frames kept | Server CPU (cores) | Server RSS |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['calls']} | {r['gap_p99']} | {r['gaps_over_30ms']:.2%} | {r['inbound']:.1%} | "
              f"{r['cores']:.2f} | {r['rss']:.0f} MB |")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
