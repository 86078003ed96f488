"""A headless call: a WAV file as the microphone, the bot's audio recorded with arrival times, events logged.

Used by ``python -m client``, the tests and the benchmarks, so all three measure the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from server.protocol import ClientWireMessage

logger = logging.getLogger(__name__)

RATE = 48_000
FRAME = 960
SILENCE_DBFS = -45.0  # a received frame louder than this counts as reply audio


def read_wav(path: str | Path, rate: int = RATE) -> np.ndarray:
    """A 16-bit PCM WAV as int16 mono at ``rate`` (resampled with libswresample when needed)."""
    with wave.open(str(path)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels, source_rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if source_rate == rate:
        return pcm
    resampler = AudioResampler(format="s16", layout="mono", rate=rate)
    frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = source_rate
    frames = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype(np.int16).tobytes())


def dbfs(pcm: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64))))) if pcm.size else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768)


class Microphone(MediaStreamTrack):
    """Silence until ``play()`` is given audio; then that audio in real time, 20 ms a frame."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[np.ndarray] = []
        self._pts = 0
        self._start: float | None = None
        self.play_started_at: float | None = None  # monotonic time of the first sample of the clip
        self.finished = asyncio.Event()
        # An acoustic echo, as from loudspeakers with no echo cancellation: what the call received comes back
        # into this microphone ``echo_delay_s`` later, ``echo_gain`` as loud (0: none).
        self.echo_gain = 0.0
        self.echo_delay_s = 0.15
        self._echo: deque[tuple[float, np.ndarray]] = deque()

    def hear_back(self, pcm: np.ndarray) -> None:
        """A received frame, played by the (simulated) loudspeaker now."""
        if self.echo_gain > 0:
            self._echo.append((time.monotonic(), pcm))

    def play(self, pcm: np.ndarray) -> None:
        """Queues ``pcm`` (int16 mono 48 kHz); ``finished`` is set once its last sample is sent."""
        self.play_started_at = None
        self.finished.clear()
        self._queue = [pcm[i : i + FRAME] for i in range(0, pcm.size, FRAME)]

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:  # pts go on from where they were (a new connection: reconnect())
            self._start = time.monotonic() - self._pts / RATE
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = np.zeros(FRAME, dtype=np.int16)
        if self._queue:
            if self.play_started_at is None:
                self.play_started_at = time.monotonic()
            chunk = self._queue.pop(0)
            samples[: chunk.size] = chunk
            if not self._queue:
                self.finished.set()
        echo = self._echo_due()
        if echo is not None:
            n = min(FRAME, echo.size)
            mixed = samples[:n].astype(np.float64) + echo[:n] * self.echo_gain
            samples[:n] = np.clip(mixed, -32768, 32767)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, RATE)
        self._pts += FRAME
        return frame

    def resync(self) -> None:
        """A new connection takes the track: its clock starts again, rather than catching up the gap in a burst."""
        self._start = None

    def _echo_due(self) -> np.ndarray | None:
        due = time.monotonic() - self.echo_delay_s
        backlog = int(self.echo_delay_s / 0.02) + 5
        while len(self._echo) > backlog:  # behind (the loop was busy): an echo path does not grow
            self._echo.popleft()
        if self._echo and self._echo[0][0] <= due:
            return self._echo.popleft()[1]
        return None


@dataclass
class Recording:
    """What came back: 48 kHz mono audio and, per 20 ms frame, its arrival time and level."""

    chunks: list[np.ndarray] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    def add(self, pcm: np.ndarray) -> None:
        self.chunks.append(pcm)
        self.arrivals.append(time.monotonic())
        self.levels.append(dbfs(pcm))

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    def first_loud_after(self, t: float, threshold: float = SILENCE_DBFS) -> float | None:
        return next((a for a, lv in zip(self.arrivals, self.levels, strict=True) if a >= t and lv > threshold), None)

    def last_loud(self, threshold: float = SILENCE_DBFS) -> float | None:
        pairs = zip(reversed(self.arrivals), reversed(self.levels), strict=True)
        return next((a for a, lv in pairs if lv > threshold), None)

    def audio_between(self, start: float, end: float) -> np.ndarray:
        parts = [c for c, a in zip(self.chunks, self.arrivals, strict=True) if start <= a <= end]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


async def fetch_ice_servers(
    url: str, token: str | None = None, headers: dict[str, str] | None = None
) -> list[RTCIceServer]:
    """The STUN/TURN servers a server hands its callers (``GET /ice``, with the same token as the offer): with
    a TURN secret configured, a TURN credential of this call's that expires."""
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    async with aiohttp.ClientSession() as http, http.get(f"{url.rstrip('/')}/ice", headers=sent) as resp:
        data = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"/ice refused ({resp.status}): {data.get('error')}")
    return [RTCIceServer(**server) for server in data["iceServers"]]


class CallClient:
    """One call to a Parley server. ``events`` holds every event received, with its arrival time.

    ``token``: the server's ``PARLEY_TOKEN`` or a call token an app minted (``POST /tokens``); ``headers``: more
    headers for the offer (e.g. the ``Origin`` of a page that embeds the call); ``local_addr``: the address the
    signalling requests leave from (tests and benchmarks acting as several callers on one machine)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        mode: str | None = None,
        language: str | None = None,
        token: str | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        headers: dict[str, str] | None = None,
        local_addr: str | None = None,
    ):
        self.url = url.rstrip("/")
        self.local_addr = local_addr
        self.token = token
        self.headers = headers or {}
        self.mode, self.language = mode, language
        self._ice_servers = ice_servers or []  # never empty-handed: with no configuration aiortc asks a public STUN
        self.mic = Microphone()
        self.recording = Recording()
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.session_id: str | None = None
        self.reconnect_secret: str | None = None  # lets this client, and no other, take the call over again
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._new_connection()

    def _new_connection(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        self._channel = self.pc.createDataChannel("events", ordered=True)
        self._channel.on("message", self._on_message)

    def _on_message(self, raw: str | bytes) -> None:
        event = json.loads(raw)
        self.events.append((time.monotonic(), event))
        if self.on_event is not None:
            self.on_event(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def connect(self, timeout: float = 20.0) -> None:
        body: dict[str, Any] = {}
        if self.mode:
            body["mode"] = self.mode
        if self.language:
            body["language"] = self.language
        data = await self._negotiate("/offer", body, timeout)
        self.session_id, self.reconnect_secret = data["session_id"], data.get("reconnect_secret")

    async def reconnect(self, timeout: float = 20.0) -> None:
        """The same call on a new connection (as after a network change): the old one is dropped, and the server,
        which keeps the call's conversation for ``PARLEY_RECONNECT_S``, is offered a new one (``POST /resume``)."""
        old = self.pc
        if self._reader is not None:
            self._reader.cancel()
        self._new_connection()
        for sender in old.getSenders():  # aiortc would end the microphone with the old connection
            if sender.track is self.mic:
                sender.replaceTrack(None)
        await old.close()
        self.mic.resync()
        fields = {"session_id": self.session_id, "reconnect_secret": self.reconnect_secret}
        # The header takes the request to the worker that holds the call, behind a balancer (deploy/haproxy.cfg).
        await self._negotiate("/resume", fields, timeout, {"X-Parley-Session": self.session_id or ""})

    async def _negotiate(
        self, path: str, fields: dict[str, Any], timeout: float, extra_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Offers the microphone on ``self.pc`` at ``path``; returns the answer's JSON once ``ready`` has come."""
        self.pc.addTrack(self.mic)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._reader = asyncio.get_running_loop().create_task(self._record(track))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer", **fields}
        headers = {**self.headers, **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        headers |= extra_headers or {}
        connector = aiohttp.TCPConnector(local_addr=(self.local_addr, 0)) if self.local_addr else None
        asked = time.monotonic()
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.post(f"{self.url}{path}", json=body, headers=headers) as resp,
        ):
            data = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"offer refused ({resp.status}): {data.get('error')}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type=data["type"]))
        await self.wait_for(lambda e: e["type"] == "ready", timeout, asked)
        return data

    async def _record(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1)
                self.recording.add(pcm)
                self.mic.hear_back(pcm)

    def send(self, message: ClientWireMessage) -> None:
        self._channel.send(json.dumps(message))

    def send_raw(self, raw: str | bytes) -> None:
        """Sends ``raw`` as it is (tests of the server's validation)."""
        self._channel.send(raw)

    def find(self, predicate: Callable[[dict[str, Any]], bool], after: float = 0.0) -> tuple[float, dict] | None:
        return next(((t, e) for t, e in self.events if t >= after and predicate(e)), None)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0, after: float = 0.0
    ) -> tuple[float, dict[str, Any]]:
        """The first event since ``after`` (monotonic) that matches; waits up to ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                while (found := self.find(predicate, after)) is None:
                    await self._changed.wait()
        return found

    async def wait_listening(self, timeout: float = 60.0, after: float = 0.0) -> float:
        """Waits until the bot has spoken and is listening again (e.g. after its greeting)."""
        t, _ = await self.wait_for(lambda e: e["type"] == "state" and e["state"] == "speaking", timeout, after)
        t, _ = await self.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening", timeout, t)
        return t

    async def end(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """Asks the server to end the call (it sends an interview's scorecard first, then ``ended``); returns
        the scorecard, if one came before ``ended``."""
        asked = time.monotonic()
        self.send({"type": "end"})
        try:
            ended_t, _ = await self.wait_for(lambda e: e["type"] == "ended", timeout, asked)
        except TimeoutError:
            ended_t = time.monotonic()
        found = [e for t, e in self.events if asked <= t <= ended_t and e["type"] == "scorecard"]
        return found[-1] if found else None

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
