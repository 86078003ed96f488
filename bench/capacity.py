"""How many calls one machine holds when the models are remote, so only Parley's own cost is measured.

    .venv/bin/python -m bench.capacity [--levels 10,20,30,40] [--seconds 10] [--client-procs 2]
        [--baseline REF] [--profile DIR] [--sequential 500]

An OpenAI-compatible server in this process answers at once (tests/fake_openai.py); the Parley server runs as
its own process with every stage on it, and the calls are held from worker processes (bench/clients.py), each
typing a question every few seconds so replies keep playing. The server's own metrics give the outgoing frame
pacing (gaps between 20 ms frames; target p99 < 30 ms) and the inbound frames received (none dropped: 50 per
second per call). CPU and memory of the server process are read from /proc.

``--baseline REF`` also runs the server as it was at git REF (exported to a temporary folder), level by level
in turn with this checkout's, so both see the same machine load. ``--profile DIR`` records each server with
py-spy (``pip install py-spy``) at the last level and prints where its CPU goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.clients import ClientPool
from bench.profile import summarize
from bench.serverproc import ROOT, ServerProcess
from parley.rtc import CallClient
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


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration",
               str(int(seconds)), "--rate", "200", "--format", "raw", "--output", str(out),
               "--nonblocking"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def hold(server: ServerProcess, procs: int, level: int, seconds: float, profile: Path | None) -> dict:
    pool = ClientPool(server.url, procs)
    try:
        await pool.open_to(level)
        await asyncio.sleep(2.0)  # greetings start; the level settles
        spy = py_spy(server.pid, seconds, profile) if profile else None
        before, cpu0, t0 = await scrape(server.url), cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(seconds)
        after, cpu1, t1 = await scrape(server.url), cpu_seconds(server.pid), time.monotonic()
        if spy is not None:
            await asyncio.get_running_loop().run_in_executor(None, spy.wait)
    finally:
        pool.close()
    p99, over_30 = gap_p99(before, after)
    inbound = after["parley_inbound_frames_total"] - before.get("parley_inbound_frames_total", 0)
    expected = level * 50 * (t1 - t0)
    return {"calls": level, "gap_p99": p99, "gaps_over_30ms": over_30, "inbound": inbound / expected,
            "cores": (cpu1 - cpu0) / (t1 - t0), "rss": rss_mb(server.pid)}  # fmt: skip


async def sequential(url: str, pid: int, count: int) -> tuple[float, float]:
    for i in range(count + 20):
        if i == 20:  # after a warm-up
            start_rss = rss_mb(pid)
        call = CallClient(url, mode="chat")
        await call.connect()
        await call.close()
    await asyncio.sleep(2.0)
    return start_rss, rss_mb(pid)


def export(ref: str, into: Path) -> Path:
    """The repository at ``ref``, as files (no .git), to run as a baseline."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def line(name: str, row: dict) -> str:
    return (f"{name:>10} {row['calls']:3d} calls: frame gap p99 {row['gap_p99']}, gaps > 30 ms "
            f"{row['gaps_over_30ms']:.2%}, inbound frames {row['inbound']:.1%} of expected, server CPU "
            f"{row['cores']:.2f} cores ({row['cores'] / row['calls']:.3f}/call), RSS {row['rss']:.0f} MB")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,20,30,40")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--baseline", help="a git ref to measure side by side with this checkout")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy profiles of the last level")
    parser.add_argument("--sequential", type=int, default=500)
    args = parser.parse_args()
    use_loopback_only()
    levels = [int(x) for x in args.levels.split(",")]
    fake = await FakeOpenAI(reply="Sure. Here is a short answer for you.").start()
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_MAX_CALLS": "1000", "PARLEY_OFFERS_PER_MINUTE": "100000",
           "PARLEY_CALLS_PER_ADDRESS": "0", "PARLEY_IDLE_S": "3600", "PARLEY_LOG_LEVEL": "WARNING",
           "PARLEY_DRAIN_S": "0"}  # fmt: skip
    scratch = tempfile.TemporaryDirectory(prefix="parley-baseline-")
    servers = {"current": ServerProcess(env)}
    if args.baseline:
        servers[args.baseline] = ServerProcess(env, root=export(args.baseline, Path(scratch.name)))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            await server.wait_healthy(60)
        for level in levels:
            for name, server in servers.items():  # in turn: both see the same load from the rest of the machine
                out = args.profile / f"{name.replace('/', '_')}.txt" if args.profile and level == levels[-1] else None
                row = await hold(server, args.client_procs, level, args.seconds, out)
                rows[name].append(row)
                print(line(name, row), flush=True)
        if args.sequential:
            server = servers["current"]
            before, after = await sequential(server.url, server.pid, args.sequential)
            print(f"{args.sequential} calls in sequence: server RSS {before:.0f} -> {after:.0f} MB "
                  f"({after - before:+.0f} MB)")  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        await fake.close()
        scratch.cleanup()
    print("\n| Server | Calls | Frame gap p99 | Gaps > 30 ms | Inbound frames kept | Server CPU (cores) | Per call |")
    print("|---|---|---|---|---|---|---|")
    for name, name_rows in rows.items():
        for r in name_rows:
            print(f"| {name} | {r['calls']} | {r['gap_p99']} | {r['gaps_over_30ms']:.2%} | {r['inbound']:.1%} | "
                  f"{r['cores']:.2f} | {r['cores'] / r['calls']:.3f} |")  # fmt: skip
    if args.profile:
        for name in servers:
            path = args.profile / f"{name.replace('/', '_')}.txt"
            if path.exists():
                print(f"\nWhere {name}'s CPU went at {levels[-1]} calls (py-spy, share of samples):")
                print(summarize(path.read_text()))


if __name__ == "__main__":
    asyncio.run(main())
