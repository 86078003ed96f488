"""How many calls a cluster of one host holds (``python -m server.cluster``: supervisord, HAProxy, N workers),
by 1 and by 2 workers side by side, and what a rolling restart and a killed worker cost.

    .venv/bin/python -m bench.cluster_capacity [--workers 1,2] [--levels 2,4,6,8] [--seconds 10]
        [--client-procs 2] [--restart-and-kill]

One real cluster per worker count, each on free loopback ports with its workers' stages on tests/fake_openai.py
(answering at once, so only Parley's own cost is measured). Level by level, each cluster in turn (both see the
same machine load), calls are placed through HAProxy from client processes (bench/clients.py) and held; the
workers' /metrics, summed, give the outgoing frame gap p99 (target < 30 ms) and the inbound frames kept, /proc
the CPU of the workers and of HAProxy. ``--restart-and-kill`` then, on the largest cluster: a rolling restart
under one offer a second (offers failed, seconds per worker), and a SIGKILL of one worker holding calls (seconds
until HAProxy has it down and back, the other workers' frame gaps and calls meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.capacity import cpu_seconds, gap_p99, scrape
from bench.clients import ClientPool
from bench.clusterproc import ClusterProcess, Running, down_and_back, slow_frames
from parley.rtc import CallClient
from server.cluster import runtime
from server.ice import use_loopback_only

WORKER_ENV = {"PARLEY_MAX_CALLS": "1000", "PARLEY_CALLS_PER_ADDRESS": "0", "PARLEY_IDLE_S": "3600",
              "PARLEY_LOG_LEVEL": "WARNING"}  # fmt: skip
DRAIN_S = 10.0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (HAProxy -W runs its proxy in a child of the master)."""
    try:
        total = cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # it has just exited
    return total + sum(map(tree_cpu, children(pid)))


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from each one's /proc stat: not every kernel has .../children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return found


def summed(snapshots: list[dict[str, float]]) -> dict[str, float]:
    """The workers' metrics added up: one histogram for the host."""
    total: dict[str, float] = {}
    for snap in snapshots:
        for key, value in snap.items():
            total[key] = total.get(key, 0.0) + value
    return total


async def active_calls(running: Running) -> list[int]:
    """Each worker's calls, by its own /status (0 for a worker that does not answer)."""
    counts = []
    async with aiohttp.ClientSession() as http:
        for name in running.cluster.names():
            try:
                async with http.get(f"{running.worker_url(name)}/status") as resp:
                    counts.append(int((await resp.json())["active_calls"]))
            except aiohttp.ClientError:
                counts.append(0)
    return counts


async def hold(running: Running, procs: int, level: int, seconds: float) -> dict:
    """``level`` calls placed through HAProxy and held for ``seconds``: the host's pacing and CPU meanwhile."""
    names = running.cluster.names()
    urls = [running.worker_url(name) for name in names]
    pids = [running.pid(name) for name in names]
    haproxy = running.pid("haproxy")
    pool = ClientPool(running.url, procs)
    try:
        await pool.open_to(level)
        await asyncio.sleep(2.0)  # greetings start; the level settles
        spread = await active_calls(running)
        before = summed([await scrape(url) for url in urls])
        cpu0, hcpu0, t0 = sum(map(tree_cpu, pids)), tree_cpu(haproxy), time.monotonic()
        await asyncio.sleep(seconds)
        after = summed([await scrape(url) for url in urls])
        cpu1, hcpu1, t1 = sum(map(tree_cpu, pids)), tree_cpu(haproxy), time.monotonic()
    finally:
        pool.close()
    p99, over_30 = gap_p99(before, after)
    inbound = after["parley_inbound_frames_total"] - before.get("parley_inbound_frames_total", 0)
    held = sum(spread)
    return {"workers": len(names), "calls": level, "held": held, "spread": "+".join(map(str, spread)),
            "gap_p99": p99, "gaps_over_30ms": over_30, "inbound": inbound / max(1.0, held * 50 * (t1 - t0)),
            "cores": (cpu1 - cpu0) / (t1 - t0), "haproxy": (hcpu1 - hcpu0) / (t1 - t0)}  # fmt: skip


def line(row: dict) -> str:
    return (f"{row['workers']} worker(s) {row['calls']:3d} calls ({row['spread']} held): frame gap p99 "
            f"{row['gap_p99']}, gaps > 30 ms {row['gaps_over_30ms']:.2%}, inbound frames {row['inbound']:.1%}, "
            f"workers' CPU {row['cores']:.2f} cores ({row['cores'] / max(1, row['held']):.3f}/call), "
            f"HAProxy {row['haproxy']:.3f} cores")  # fmt: skip


def held_under_30ms(rows: list[dict]) -> int:
    """The most calls held with every call up and p99 within 30 ms (the largest level before the first miss)."""
    best = 0
    for row in rows:
        if row["held"] < row["calls"] or not row["gap_p99"].startswith("<=") or float(row["gap_p99"][3:-3]) > 30:
            break
        best = row["held"]
    return best


def verdict(rows: dict[int, list[dict]]) -> str:
    """What this machine allows, and the cost per call at the top level, which predicts a bigger machine."""
    here = ", ".join(f"{n} worker(s): {held_under_30ms(r)} calls" for n, r in rows.items())
    top = [r[-1] for r in rows.values() if r and r[-1]["held"]]
    per_call = sum(r["cores"] / r["held"] for r in top) / max(1, len(top))
    haproxy = max((r["haproxy"] / r["held"] for r in top), default=0.0)
    one_loop = held_under_30ms(rows[min(rows)]) if rows else 0
    cpu_bound = 1 / per_call if per_call else 0.0
    return (f"Held with frame gap p99 <= 30 ms on this machine ({os.cpu_count()} cores, shared with the client "
            f"processes): {here}. At the top level a call costs the workers {per_call:.3f} cores and HAProxy "
            f"{haproxy:.4f} (signalling only: the media bypasses it). Per core on a bigger machine, one worker "
            f"per core: CPU allows about {cpu_bound:.0f} calls; one worker's event loop paced "
            f"{f'{one_loop} calls cleanly here' if one_loop else 'none of these levels cleanly here'} (a lower "
            f"bound while the clients share the cores): measure with the clients elsewhere before planning more "
            f"than that per core.")  # fmt: skip


async def offer_and_hang_up(url: str) -> None:
    call = CallClient(url, mode="chat")
    try:
        await call.connect()
        await call.end()
    finally:
        await call.close()


async def offer_noting_failure(url: str, failures: list[str]) -> None:
    """One offer through the cluster, hung up at once; a failure is noted in ``failures``, not raised."""
    try:
        await offer_and_hang_up(url)
    except Exception as exc:
        failures.append(repr(exc))


async def rolling_restart(running: Running) -> None:
    """Every worker restarted in turn (runtime.rolling_restart) while one offer a second is placed."""
    failures: list[str] = []
    offered = 0
    said: list[str] = []

    async def offer_every_second() -> None:
        nonlocal offered
        while True:
            offered += 1
            await offer_noting_failure(running.url, failures)
            await asyncio.sleep(1.0)

    offering = asyncio.create_task(offer_every_second())
    started = time.monotonic()
    try:
        await asyncio.to_thread(runtime.rolling_restart, running.run_dir, 120.0, said.append)
    finally:
        offering.cancel()
    took = time.monotonic() - started
    for text in said:
        print(f"  {text}")
    print(f"rolling restart of {running.cluster.workers} workers: {took:.1f} s ({took / running.cluster.workers:.1f} "
          f"s per worker), {offered} offers at 1/s, {len(failures)} failed {failures[:3]}", flush=True)  # fmt: skip


async def kill_one(running: Running, procs: int, calls: int) -> None:
    """``calls`` held, then SIGKILL to w1: HAProxy's view of it, offers meanwhile, the other workers' pacing."""
    victim, survivors = "w1", running.cluster.names()[1:]
    urls = [running.worker_url(name) for name in survivors]
    pool = ClientPool(running.url, procs)
    try:
        await pool.open_to(calls)
        await asyncio.sleep(2.0)
        spread_before = await active_calls(running)
        before, slow_before = summed([await scrape(u) for u in urls]), [await slow_frames(u) for u in urls]
        pid = running.pid(victim)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        watching = asyncio.create_task(down_and_back(running.run_dir, victim, killed))
        offers, failed = 0, []
        while not watching.done():  # offers while it is down (and coming back)
            offers += 1
            await offer_noting_failure(running.url, failed)
            await asyncio.sleep(0.5)
        down_after, back_after = await watching
        after, slow_after = summed([await scrape(u) for u in urls]), [await slow_frames(u) for u in urls]
        spread_after = await active_calls(running)
    finally:
        pool.close()
    p99, over_30 = gap_p99(before, after)
    slow = {le: sum(a[le] - b[le] for a, b in zip(slow_after, slow_before, strict=True)) for le in ("0.1", "0.5")}
    print(f"SIGKILL of {victim} (calls per worker {spread_before} -> {spread_after}): HAProxy had it down after "
          f"{down_after:.2f} s, supervisord had it back and HAProxy sending it offers after {back_after:.2f} s; "
          f"the other workers' frames meanwhile: gap p99 {p99}, {over_30:.2%} over 30 ms, {slow['0.1']:.0f} over "
          f"100 ms, {slow['0.5']:.0f} over 500 ms; {offers} offers meanwhile, {len(failed)} failed {failed[:3]}",
          flush=True)  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, one cluster each, measured in turn")
    parser.add_argument("--levels", default="2,4,6,8")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--restart-and-kill", action="store_true", help="then a rolling restart and a SIGKILL")
    args = parser.parse_args()
    use_loopback_only()
    levels = [int(x) for x in args.levels.split(",")]
    counts = [int(x) for x in args.workers.split(",")]
    scratch = tempfile.TemporaryDirectory(prefix="parley-cluster-bench-")
    processes = {
        n: ClusterProcess(
            Path(scratch.name) / f"w{n}", WORKER_ENV, workers=n, offers_per_minute=100000, drain_s=DRAIN_S
        )  # fmt: skip
        for n in counts
    }
    rows: dict[int, list[dict]] = {n: [] for n in counts}
    print(f"load average before: {os.getloadavg()}", flush=True)
    try:
        clusters = {}
        for n, process in processes.items():
            (Path(scratch.name) / f"w{n}").mkdir()
            clusters[n] = await asyncio.to_thread(process.start)
        for level in levels:
            for n, running in clusters.items():  # in turn: both see the same load from the rest of the machine
                row = await hold(running, args.client_procs, level, args.seconds)
                rows[n].append(row)
                print(line(row), flush=True)
        if args.restart_and_kill and max(counts) > 1:
            running = clusters[max(counts)]
            await rolling_restart(running)
            await kill_one(running, args.client_procs, 2 * running.cluster.workers)
    finally:
        for process in processes.values():
            await asyncio.to_thread(process.stop)
        scratch.cleanup()
    print(f"load average after: {os.getloadavg()}")
    print("\n| Workers | Calls | Held (per worker) | Frame gap p99 | Gaps > 30 ms | Inbound frames kept | "
          "Workers' CPU (cores) | Per call | HAProxy CPU (cores) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n_rows in rows.values():
        for r in n_rows:
            print(f"| {r['workers']} | {r['calls']} | {r['held']} ({r['spread']}) | {r['gap_p99']} | "
                  f"{r['gaps_over_30ms']:.2%} | {r['inbound']:.1%} | {r['cores']:.2f} | "
                  f"{r['cores'] / max(1, r['held']):.3f} | {r['haproxy']:.3f} |")  # fmt: skip
    print("\n" + verdict(rows))


if __name__ == "__main__":
    asyncio.run(main())
