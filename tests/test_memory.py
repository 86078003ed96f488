"""After hang-up nothing of a call is left: its objects, its peer connection, its audio, and its words in the
shared models. A server that keeps a little of every call runs out of memory after weeks."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import Counter
from collections.abc import Collection

import aiohttp
import numpy as np
import pytest
from aiortc import RTCPeerConnection

from parley.rtc import CallClient
from server.app import CALLS
from server.config import Settings
from server.dialogue.bank import default_bank
from server.history.api import WRITER
from server.providers.base import Providers

pytestmark = pytest.mark.real_models


class RememberedAudio:
    """The embedded speech recognition, noting (weakly) every buffer of the person's audio it was handed."""

    def __init__(self, stt) -> None:
        self._stt = stt
        self.buffers: list[weakref.ref[np.ndarray]] = []

    async def transcribe(self, audio: np.ndarray, language: str, *, languages: Collection[str] = ()) -> str:
        self.buffers.append(weakref.ref(audio))
        return await self._stt.transcribe(audio, language, languages=languages)


def server_objects() -> Counter[str]:
    """Live objects of the server's own classes (and every peer connection), by class."""
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        cls = type(obj)
        module = cls.__dict__.get("__module__")
        if (isinstance(module, str) and module.startswith("server.")) or isinstance(obj, RTCPeerConnection):
            counts[f"{cls.__module__}.{cls.__qualname__}"] += 1
    return counts


def is_(kind: str, **fields: str):
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


async def spoken_turn(call: CallClient, speech: np.ndarray, after: float) -> float:
    call.mic.play(speech)
    heard_t, _ = await call.wait_for(is_("transcript", role="user"), 90, after)
    said_t, _ = await call.wait_for(is_("transcript", role="assistant"), 120, heard_t)
    return said_t


async def test_no_call_leaves_anything_behind(start_server, started_apps, tts_speech, silence, real_providers):
    stt = RememberedAudio(real_providers.stt)
    providers = Providers(stt=stt, llm=real_providers.llm, tts=real_providers.tts)
    # A call hung up without "end" is kept for reconnect_s in case its client comes back (test_reconnect.py).
    url = await start_server(providers, Settings(ice_loopback=True, hangover_ms=700, max_calls=3, reconnect_s=1.0))
    app_calls = started_apps[-1][CALLS]
    default_bank()  # the interview questions: read once for the whole server, not per call
    gc.collect()
    before = server_objects()
    server_side: list[weakref.ref[object]] = []

    async def place(mode: str, barge_in: bool, hang_up_politely: bool) -> None:
        call = CallClient(url, mode, "en")
        await call.connect()
        for c in list(app_calls.values()):
            server_side.extend(
                weakref.ref(o) for o in (c, c.pc, c.track, c.turn_taker, c.responder, c.responder.conversation)
            )
        greeted = await call.wait_listening(timeout=90)
        pause = silence(1.5)
        question = np.concatenate([tts_speech("Tell me about your favourite city and why you like it."), pause])
        if barge_in:
            call.mic.play(question)
            heard_t, _ = await call.wait_for(is_("transcript", role="user"), 90, greeted)
            speaking_t, _ = await call.wait_for(is_("state", state="speaking"), 120, heard_t)
            await asyncio.sleep(0.5)
            call.mic.play(np.concatenate([tts_speech("Sorry, wait. What about Rome?"), pause]))
            await call.wait_for(is_("interrupted"), 30, speaking_t)
            await call.wait_for(is_("transcript", role="assistant", interrupted=False), 120, speaking_t)
        else:
            await spoken_turn(call, question, greeted)
        if hang_up_politely:
            await call.end()
        await call.close()

    await place("chat", barge_in=False, hang_up_politely=True)
    await asyncio.gather(place("chat", True, False), place("interview", False, True))  # two at once

    for _ in range(200):  # the server notices each hang-up
        if not app_calls:
            break
        await asyncio.sleep(0.05)
    assert not app_calls
    assert await started_apps[-1][WRITER].flush()  # the calls' records are written, none left waiting in the queue
    await asyncio.sleep(0.5)  # closing tasks finish
    gc.collect()

    alive = [ref() for ref in server_side if ref() is not None]
    assert not alive, [f"{type(o).__name__} kept by {[type(r).__name__ for r in gc.get_referrers(o)]}" for o in alive]
    assert stt.buffers and all(ref() is None for ref in stt.buffers), "the person's audio outlived the call"
    grown = {name: n - before[name] for name, n in server_objects().items() if n > before[name]}
    assert not grown, f"objects of the server's classes left after every call ended: {grown}"
    # The shared chat model keeps nothing of the conversations (their words) in its cache.
    cached = real_providers.llm.cached_text()
    for word in ("favourite", "Rome", "city"):
        assert word not in cached, f"the chat model still holds a call's words: ...{cached[-300:]!r}"
    # An operator sees the same from outside: no call object alive, and the process's own figures.
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        figures = dict(line.split(" ", 1) for line in (await resp.text()).splitlines() if line[:1] != "#")
    assert float(figures["parley_live_calls"]) == 0 and float(figures["parley_live_replies"]) == 0
    assert float(figures["process_resident_memory_bytes"]) > 50e6 and float(figures["process_open_fds"]) > 0
    assert float(figures["parley_python_blocks"]) > 100_000
