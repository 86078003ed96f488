"""A whole ``Call`` without WebRTC and without model files: speech probabilities come from a script (one per 32 ms
window, in place of Silero), the providers are fakes, the events channel is a list, and the outgoing track is
pulled one 20 ms frame at a time by the test. Time is the script's: windows fed and frames pulled, so nothing
waits on the wall clock (pipecat's ``run_test`` drives one processor with scripted frames the same way)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from server.audio.inbound import WINDOW
from server.audio.vad import WINDOW_MS
from server.config import Settings
from server.metrics import Metrics
from server.protocol import SERVER_EVENTS
from server.providers.base import Providers
from server.session import Call
from tests.fakes import FakeLLM, FakeSTT, FakeTTS, fake_providers

SPEECH, QUIET = 0.9, 0.0
STEPS = 20_000  # loop turns a condition may take: the fakes answer within a few each


def voice(level: float, samples: int = WINDOW, rate: int = 16_000) -> np.ndarray:
    """A 200 Hz tone with RMS ``level`` (float, full scale 1)."""
    t = np.arange(samples) / rate
    return (level * np.sqrt(2) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


class ScriptedVad:
    """Stands in for Silero: the probabilities of a scripted timeline, one per window (then silence)."""

    def __init__(self, probabilities: Iterable[float] = ()) -> None:
        self.probabilities = deque(probabilities)

    def __call__(self, window: np.ndarray, between_turns: bool = True) -> float:
        return self.probabilities.popleft() if self.probabilities else 0.0


class ScriptedModel:
    """Stands in for ``SileroModel``: every stream is the one script."""

    def __init__(self, vad: ScriptedVad) -> None:
        self._vad = vad

    def stream(self) -> ScriptedVad:
        return self._vad


class ScriptedTurnModel:
    """The end-of-turn model's verdict, given by the test: the probability the turn is complete at every pause."""

    def __init__(self, probability: float | None) -> None:
        self.probability = probability
        self.asked: list[float] = []  # seconds of audio it was given, per pause

    async def complete(self, audio: np.ndarray) -> float | None:
        self.asked.append(len(audio) / 16_000)
        return self.probability


class ListChannel:
    """The ``events`` data channel, open, keeping what is sent."""

    label = "events"
    readyState = "open"  # aiortc's name

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, message: str) -> None:
        event = json.loads(message)
        typed = SERVER_EVENTS[event["type"]]  # every event the call sends is one server/protocol.py types
        assert typed.__required_keys__ <= event.keys() <= typed.__required_keys__ | typed.__optional_keys__, event
        self.events.append(event)

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        pass

    def remove_all_listeners(self) -> None:
        pass


class Peer:
    """Stands in for ``RTCPeerConnection``: keeps the call's handlers so the test can fire them."""

    def __init__(self) -> None:
        self.connectionState = "new"  # aiortc's name
        self.handlers: dict[str, Callable[..., Any]] = {}

    def on(self, event: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.handlers[event] = handler
            return handler

        return register

    async def close(self) -> None:
        self.connectionState = "closed"

    def remove_all_listeners(self) -> None:
        self.handlers.clear()


class ScriptedCall:
    def __init__(
        self,
        providers: Providers,
        mode: str = "chat",
        settings: Settings | None = None,
        turn_model: ScriptedTurnModel | None = None,
    ) -> None:
        self.vad = ScriptedVad()
        self.peer = Peer()
        self.metrics = Metrics()
        self.channel = ListChannel()
        self.call = Call(
            "scripted", self.peer, settings or Settings(hangover_ms=500), providers,  # type: ignore[arg-type]
            ScriptedModel(self.vad), self.metrics, mode, "en", turn_model=turn_model,  # type: ignore[arg-type]
        )  # fmt: skip
        self.frames_sent = 0
        self.loud_frames = 0

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.channel.events

    async def connect(self) -> None:
        """The channel opens and the peer connects: the bot greets; returns once the greeting has played."""
        self.call.attach()
        self.peer.handlers["datachannel"](self.channel)
        self.peer.connectionState = "connected"
        await self.peer.handlers["connectionstatechange"]()
        await self.play_until(lambda: self.kinds()[-1:] == ["state:listening"])

    def kinds(self, since: int = 0) -> list[str]:
        """The events from ``since`` on, as ``type`` or ``type:state``/``type:event``/``type:role``."""
        out = []
        for event in self.events[since:]:
            detail = event.get("state") or event.get("event") or event.get("role")
            out.append(f"{event['type']}:{detail}" if detail else event["type"])
        return out

    def counter(self, name: str) -> float:
        return self.metrics.registry.get_sample_value(name) or 0.0

    # -- time: windows heard and frames played ---------------------------------------------------------------
    def hear(self, probabilities: Iterable[float], level: float = 0.5) -> None:
        """Windows of the person, synchronously (as the call hears them, one per 32 ms)."""
        for probability in probabilities:
            self.vad.probabilities.append(probability)
            self.call.turn_taker.hear(voice(level if probability >= 0.5 else 0.0))
            self.vad.probabilities.clear()  # not asked for (the person is muted): the script moves on all the same

    def frame(self) -> np.ndarray:
        """The bot's next 20 ms, as the sender would take it."""
        pcm = self.call.track.take_frame()
        self.frames_sent += 1
        self.loud_frames += int(np.abs(pcm).max(initial=0) > 1000)
        return pcm

    async def settle(self, condition: Callable[[], bool], play: bool = False) -> None:
        """Lets the call's tasks run until ``condition`` holds (pulling frames too with ``play``)."""
        for _ in range(STEPS):
            if condition():
                return
            if play:
                self.frame()
            await asyncio.sleep(0)
        raise AssertionError(f"never happened; events: {self.kinds()}")

    async def play_until(self, condition: Callable[[], bool]) -> None:
        await self.settle(condition, play=True)

    async def close(self) -> None:
        await self.call.close()


# -- helpers the scripted-call tests share (test_turn_taking.py, test_speech_over_bot.py) ----------------
HANGOVER_WINDOWS = 500 // WINDOW_MS + 1  # Settings(hangover_ms=500), as the scripted call has
LONG_REPLY = " ".join(["This reply goes on for a while so that the person can talk over it."] * 4)


def instant(stt: FakeSTT | None = None, llm: FakeLLM | None = None) -> tuple[FakeSTT, FakeLLM, FakeTTS]:
    """Fakes that answer within a loop turn: the script's time is the only time."""
    stt = stt or FakeSTT()
    stt.delay = 0
    llm = llm or FakeLLM()
    llm.token_delay = 0
    return stt, llm, FakeTTS(delay=0)


def listening(call: ScriptedCall, since: int) -> Callable[[], bool]:
    """The call has gone back to listening since event ``since``."""
    return lambda: call.kinds(since)[-1:] == ["state:listening"]


async def connected(
    stt: FakeSTT | None = None,
    llm: FakeLLM | None = None,
    mode: str = "chat",
    settings: Settings | None = None,
    turn_model: ScriptedTurnModel | None = None,
) -> ScriptedCall:
    call = ScriptedCall(fake_providers(*instant(stt, llm)), mode, settings, turn_model)
    await call.connect()
    return call
