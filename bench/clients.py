"""Bench calls held from worker processes, so the clients' own CPU (Opus, SRTP, one event loop) does not hold
back a single bench loop and show up as the server dropping frames.

A worker is driven over a pipe: ``("open", n)`` opens n more calls and answers ``("opened", total)``;
``("close",)`` hangs up everything and ends the worker. Every open call types a question every few seconds,
so replies keep playing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.connection import Connection

from parley.rtc import CallClient

TALK_EVERY_S = 3.0


async def _talk(call: CallClient, index: int) -> None:
    await asyncio.sleep(index * 0.05)
    while True:
        call.send({"type": "text", "text": "tell me something"})
        await asyncio.sleep(TALK_EVERY_S)


async def _serve(url: str, conn: Connection) -> None:
    from server.ice import use_loopback_only

    use_loopback_only()
    loop = asyncio.get_running_loop()
    calls: list[CallClient] = []
    talkers: list[asyncio.Task[None]] = []
    try:
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "open":
                for _ in range(command[1]):
                    call = CallClient(url, mode="chat")
                    await call.connect()
                    calls.append(call)
                    talkers.append(loop.create_task(_talk(call, len(calls))))
                conn.send(("opened", len(calls)))
            else:
                return
    finally:
        for task in talkers:
            task.cancel()
        for call in calls:
            await call.close()
        conn.send(("closed", len(calls)))


def _main(url: str, conn: Connection) -> None:
    asyncio.run(_serve(url, conn))


class ClientPool:
    """``procs`` worker processes; calls are spread over them evenly."""

    def __init__(self, url: str, procs: int) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the bench's loop
        self._pipes: list[Connection] = []
        self._procs = []
        for _ in range(procs):
            ours, theirs = context.Pipe()
            proc = context.Process(target=_main, args=(url, theirs), daemon=True)
            proc.start()
            self._pipes.append(ours)
            self._procs.append(proc)
        self._counts = [0] * procs

    async def open_to(self, total: int) -> None:
        """Opens calls until ``total`` are held, spread over the workers."""
        loop = asyncio.get_running_loop()
        add = [0] * len(self._pipes)
        for i in range(total - sum(self._counts)):
            add[(sum(self._counts) + i) % len(add)] += 1
        busy = []
        for i, n in enumerate(add):
            if n:
                self._pipes[i].send(("open", n))
                busy.append(i)
        for i in busy:
            _, count = await loop.run_in_executor(None, self._pipes[i].recv)
            self._counts[i] = count

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(("close",))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
