"""200 calls opened and closed one after another leave nothing behind: tasks, threads, file descriptors."""

from __future__ import annotations

import asyncio
import os
import resource
import threading

from parley.rtc import CallClient
from server.app import CALLS
from server.config import Settings
from tests.fakes import fake_providers
from tests.helpers import settled

CALLS_IN_SEQUENCE = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def one_call(url: str, app_calls: dict) -> None:
    call = CallClient(url, mode="chat")
    await call.connect()  # returns once the server said "ready" on the events channel
    await call.close()
    for _ in range(100):
        if not app_calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the server kept a call its client hung up")


async def test_calls_in_sequence_leak_nothing(start_server, started_apps):
    # reconnect_s=0: a call whose client closes without a word ends at once, as it did before calls could wait for
    # their client to come back (test_reconnect.py has the waiting; the grace period is freed the same way).
    settings = Settings(ice_loopback=True, max_calls=5, offers_per_minute=10_000, reconnect_s=0)
    url = await start_server(fake_providers(), settings)
    app_calls = started_apps[-1][CALLS]
    for _ in range(10):  # warm up: first-use allocations, thread pools, caches
        await one_call(url, app_calls)
    await asyncio.sleep(0.5)
    tasks, threads, fds = len(asyncio.all_tasks()), threading.active_count(), open_fds()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(CALLS_IN_SEQUENCE):
        await one_call(url, app_calls)
    # What a call leaves to wind down (its tasks, aiortc's threads) goes within moments.
    await settled(lambda: len(asyncio.all_tasks()) <= tasks + 2 and threading.active_count() <= threads + 1, 5.0)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{CALLS_IN_SEQUENCE} calls: peak RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB")
    assert len(asyncio.all_tasks()) <= tasks + 2, asyncio.all_tasks()
    assert threading.active_count() <= threads + 1
    assert open_fds() <= fds + 5
