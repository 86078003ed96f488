"""One call flooding the data channel, another asking a typed question: how much slower is the second answered?

    .venv/bin/python -m bench.flood [--rounds 6] [--seconds 5] [--rate 200] [--unlimited]

An OpenAI-compatible server answers at once (tests/fake_openai.py, in a process of its own, as a remote API would
be), so only Parley's own cost is measured; the Parley server runs as its own process (python -m server). The
flooding call lives in a worker process too (its 200 messages a second would otherwise load this process's loop
and show up in the other call's figures). The
measuring call asks a typed question, waits until the answer has played, and asks again, for ``--seconds``
without the flood and then as long with it, ``--rounds`` times in turn, so both see the same machine. Latency
is typed question to the first audible frame of the answer at the client (what the person notices), with the
server's own ``response_ms`` beside it. ``--unlimited`` also measures a server with the message limit lifted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import time
from multiprocessing.connection import Connection

from bench.capacity import cpu_seconds
from bench.serverproc import ServerProcess
from parley.rtc import CallClient
from server.ice import use_loopback_only
from tests.fake_openai import KEY, FakeOpenAI

QUESTION = "What is the difference between a process and a thread?"


# -- the flooding call, in a worker process --------------------------------------------------------------------
async def _flood(call: CallClient, seconds: float, rate: float) -> tuple[int, int, float]:
    """``rate`` messages a second for ``seconds``, on schedule (typed text, and every fourth a control message);
    returns how many were sent, how many ``rate_limited`` errors came back, and the CPU seconds it took."""
    started, cpu = time.monotonic(), time.process_time()
    sent = 0
    while (elapsed := time.monotonic() - started) < seconds:
        while sent < elapsed * rate:
            if sent % 4 == 3:
                call.send({"type": "scorecard"})
            else:
                call.send({"type": "text", "text": f"flood message {sent}"})
            sent += 1
        await asyncio.sleep(0.005)
    cpu = time.process_time() - cpu
    await asyncio.sleep(0.5)  # the last errors arrive
    limited = sum(1 for t, e in call.events if t >= started and e["type"] == "error" and e["code"] == "rate_limited")
    return sent, limited, cpu


async def _flooder(url: str, conn: Connection) -> None:
    # The flooding client's own CPU (aiortc's SCTP and DTLS in Python; the report gives it) is an attacker's
    # elsewhere; here it shares the machine with the server, so it yields to it (still on schedule).
    os.nice(10)
    use_loopback_only()
    loop = asyncio.get_running_loop()
    call = CallClient(url, mode="chat")
    await call.connect()
    await call.wait_listening(30)
    conn.send(("ready",))
    try:
        while (command := await loop.run_in_executor(None, conn.recv))[0] == "flood":
            conn.send(("flooded", *await _flood(call, command[1], command[2])))
        ended = [e for _, e in call.events if e["type"] == "ended"]
        conn.send(("closed", len(ended)))
    finally:
        await call.close()


def _flooder_main(url: str, conn: Connection) -> None:
    asyncio.run(_flooder(url, conn))


class Flooder:
    """The flooding call's worker process, driven over a pipe."""

    def __init__(self, url: str) -> None:
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        self._pipe = ours
        self._proc = multiprocessing.get_context("spawn").Process(target=_flooder_main, args=(url, theirs), daemon=True)
        self._proc.start()

    async def _recv(self) -> tuple:
        return await asyncio.get_running_loop().run_in_executor(None, self._pipe.recv)

    async def ready(self) -> None:
        await self._recv()

    async def start(self, seconds: float, rate: float) -> asyncio.Future[tuple]:
        self._pipe.send(("flood", seconds, rate))
        return asyncio.ensure_future(self._recv())

    async def close(self) -> int:
        """Hangs up; returns how many ``ended`` events the flooding call got (0: its call went on to the end)."""
        self._pipe.send(("close",))
        _, ended = await self._recv()
        self._proc.join(15)
        return int(ended)


# -- the model stand-in, in a worker process -------------------------------------------------------------------
async def _fake(conn: Connection) -> None:
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # replies cut mid-stream are the point, not errors
    fake = await FakeOpenAI(reply="Sure. Here is a short answer for you.").start()
    conn.send(fake.base_url)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await fake.close()


def _fake_main(conn: Connection) -> None:
    asyncio.run(_fake(conn))


# -- the measuring call ----------------------------------------------------------------------------------------
async def ask(call: CallClient) -> tuple[float, int]:
    """One typed question: seconds to the first audible frame of the answer, and the server's ``response_ms``."""
    asked = time.monotonic()
    call.send({"type": "text", "text": QUESTION})
    _, metrics = await call.wait_for(lambda e: e["type"] == "metrics", 30, asked)
    heard = await call.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening", 30, asked)
    first = call.recording.first_loud_after(asked)
    if first is None or first > heard[0]:
        raise RuntimeError("the answer was not heard")
    return first - asked, int(metrics["response_ms"])


async def ask_for(call: CallClient, seconds: float) -> list[tuple[float, int]]:
    """Questions one after another (each once the last answer has played) for ``seconds``."""
    until = time.monotonic() + seconds
    out = []
    while time.monotonic() < until:
        out.append(await ask(call))
        await asyncio.sleep(0.2)
    return out


async def measure(url: str, pid: int, rounds: int, seconds: float, rate: float) -> dict:
    flooder = Flooder(url)
    server_cpu = {"quiet": 0.0, "flooded": 0.0}  # the server's CPU seconds in each kind of window
    call = CallClient(url, mode="chat")
    try:
        await call.connect()
        await asyncio.gather(call.wait_listening(30), flooder.ready())
        quiet: list[tuple[float, int]] = []
        flooded: list[tuple[float, int]] = []
        sent = limited = 0
        cpu = 0.0
        for _ in range(rounds):
            before = cpu_seconds(pid)
            quiet += await ask_for(call, seconds)
            server_cpu["quiet"] += cpu_seconds(pid) - before
            flooding = await flooder.start(seconds, rate)
            before = cpu_seconds(pid)
            await asyncio.sleep(0.3)  # the flood is under way
            flooded += await ask_for(call, seconds - 0.3)
            _, n, k, c = await flooding
            server_cpu["flooded"] += cpu_seconds(pid) - before
            sent, limited, cpu = sent + n, limited + k, cpu + c
            await asyncio.sleep(1.0)  # the flooder's last replies end
        errors = [e for _, e in call.events if e["type"] == "error"]
    finally:
        ended = await flooder.close()
        await call.close()
    return {"quiet": quiet, "flooded": flooded, "sent": sent, "limited": limited, "ended": ended, "errors": errors,
            "flooder_cores": cpu / (rounds * seconds),
            "server_cores": {k: v / (rounds * seconds) for k, v in server_cpu.items()}}  # fmt: skip


def median_ms(samples: list[tuple[float, int]], server: bool = False) -> float:
    return statistics.median(s[1] if server else s[0] * 1000 for s in samples)


def p90_ms(samples: list[tuple[float, int]]) -> float:
    values = sorted(s[0] * 1000 for s in samples)
    return values[min(len(values) - 1, int(0.9 * len(values)))]


def report(name: str, r: dict, seconds: float, rounds: int) -> None:
    quiet, flooded = r["quiet"], r["flooded"]
    print(f"\n{name}: {len(quiet)} questions without the flood, {len(flooded)} during it; the flooder sent "
          f"{r['sent']} messages in {rounds * seconds:.0f} s (its own CPU: {r['flooder_cores']:.2f} cores) and got "
          f"{r['limited']} rate_limited errors; its call "
          f"{'was ended' if r['ended'] else 'went on'}; errors to the measuring call: {len(r['errors'])}")  # fmt: skip
    print("| Second call's typed question | Median to first audio | p90 | Server response_ms (median) | Server CPU |")
    print("|---|---|---|---|---|")
    for label, key in (("without the flood", "quiet"), ("while the other call floods", "flooded")):
        samples = r[key]
        print(f"| {label} | {median_ms(samples):.0f} ms | {p90_ms(samples):.0f} ms | "
              f"{median_ms(samples, server=True):.0f} ms | {r['server_cores'][key]:.2f} cores |")  # fmt: skip
    print(f"ratio (median, flood / no flood): {median_ms(flooded) / median_ms(quiet):.2f}x "
          f"(p90: {p90_ms(flooded) / p90_ms(quiet):.2f}x; goal: at most 1.5x)")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0, help="of each window, with and without the flood")
    parser.add_argument("--rate", type=float, default=200.0, help="the flood's messages a second")
    parser.add_argument("--unlimited", action="store_true", help="also a server with the message limit lifted")
    args = parser.parse_args()
    use_loopback_only()
    spawn = multiprocessing.get_context("spawn")
    fake_pipe, theirs = spawn.Pipe()
    fake = spawn.Process(target=_fake_main, args=(theirs,), daemon=True)
    fake.start()
    base_url = await asyncio.get_running_loop().run_in_executor(None, fake_pipe.recv)
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_LOG_LEVEL": "WARNING", "PARLEY_DRAIN_S": "0"}  # fmt: skip
    servers = {"rate-limited (defaults)": ServerProcess(env)}
    if args.unlimited:
        lifted = {"PARLEY_MESSAGES_PER_SECOND": "100000", "PARLEY_MESSAGE_BURST": "100000"}
        servers["limit lifted"] = ServerProcess({**env, **lifted})
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            await server.wait_healthy(60)
        for name, server in servers.items():
            result = await measure(server.url, server.pid, args.rounds, args.seconds, args.rate)
            report(name, result, args.seconds, args.rounds)
    finally:
        for server in servers.values():
            server.stop()
        fake_pipe.send("close")
        fake.join(10)


if __name__ == "__main__":
    asyncio.run(main())
