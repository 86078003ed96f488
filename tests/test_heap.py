"""Memory given back when a call ends: the ended call's objects at once, and the C heap's free pages."""

from __future__ import annotations

import asyncio
import gc
import threading

import numpy as np
import pytest

from parley.rtc import CallClient
from server import native_memory
from server.app import CALLS, METRICS
from server.config import Settings
from tests.fakes import fake_providers
from tests.helpers import settled


def resident_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not native_memory.available(), reason="malloc_trim and mallinfo2 are glibc's")
def test_the_free_pages_an_inference_thread_left_go_back_to_the_system() -> None:
    """What a model thread frees between blocks it still holds stays resident until the heap is trimmed."""
    kept: list[np.ndarray] = []

    def inference() -> None:  # 8 KiB blocks (below malloc's mmap threshold) in this thread's own arena
        blocks = [np.ones(1024) for _ in range(20_000)]  # ~160 MB
        kept.extend(blocks[::200])  # a few stay in use, scattered: the arena cannot shrink from its top
        kept.append(blocks[-1])

    worker = threading.Thread(target=inference)
    worker.start()
    worker.join()
    free_before = native_memory.heap_bytes()[1]  # type: ignore[index]
    resident = resident_mb()
    assert free_before > 100 * 2**20, f"only {free_before / 2**20:.0f} MB free in the arenas"
    native_memory.give_back()
    given = resident - resident_mb()
    assert given > 100, f"trimming gave back only {given:.0f} MB of {free_before / 2**20:.0f} MB free"
    assert len(kept) == 101  # the blocks in use are untouched


async def test_an_ended_call_is_freed_at_once_not_at_the_collectors_leisure(start_server, started_apps) -> None:
    """On the server's frozen heap (server/heap.py), with the collector's own schedule off: every ended call is
    gone a moment after its hang-up, because the server collects it then."""
    url = await start_server(fake_providers(), Settings(ice_loopback=True, max_calls=5, offers_per_minute=10_000))
    app = started_apps[-1]
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        for _ in range(3):
            call = CallClient(url, mode="chat")
            await call.connect()
            await call.close()
        assert await settled(lambda: not app[CALLS], 5.0), "the server kept a call its client hung up"
        live = app[METRICS].live_calls
        assert len(live) > 0  # unreachable cycles, not yet freed: what the collector alone would leave for long
        assert await settled(lambda: len(live) == 0, 5.0), f"{len(live)} ended calls still alive"
    finally:
        gc.enable()
        gc.unfreeze()
        await asyncio.sleep(0)
