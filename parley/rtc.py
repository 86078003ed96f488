"""The WebRTC side of a call: one aiortc peer connection to a Parley server, its ``events`` data channel (each
event a dict, with its arrival time), the microphone track and the recording of the bot's audio.

``parley.Call`` (the library's call) is built on ``CallClient``; the tests and the benchmarks use ``CallClient``
directly, so all of them measure the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from parley.audio import RATE, Microphone, Recording
from server.protocol import ClientWireMessage

logger = logging.getLogger(__name__)


class Refused(RuntimeError):
    """The server answered a request with an error (``status``: the HTTP status, ``error``: its words)."""

    def __init__(self, what: str, status: int, error: str) -> None:
        super().__init__(f"{what} refused ({status}): {error}")
        self.status, self.error = status, error


async def _answer(resp: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    """The JSON of a 200 answer; any other answer as ``Refused`` with the server's words (or a proxy's status)."""
    try:
        data = await resp.json(content_type=None)
    except ValueError:
        data = None
    if resp.status != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        raise Refused(what, resp.status, str(error or resp.reason or "not a JSON answer"))
    return data


async def fetch_ice_servers(
    url: str, token: str | None = None, headers: dict[str, str] | None = None
) -> list[RTCIceServer]:
    """The STUN/TURN servers a server hands its callers (``GET /ice``, with the same token as the offer): with
    a TURN secret configured, a TURN credential of this call's that expires."""
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    async with aiohttp.ClientSession() as http, http.get(f"{url.rstrip('/')}/ice", headers=sent) as resp:
        data = await _answer(resp, "/ice")
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
        self.closed = False
        self._new_connection()

    def _new_connection(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        self._channel = self.pc.createDataChannel("events", ordered=True)
        self._channel.on("message", self._on_message)

    def _on_message(self, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            logger.warning("an event that is not a JSON object with a type, ignored: %.80r", raw)
            return
        self.add_event(event)

    def add_event(self, event: dict[str, Any]) -> None:
        """Records ``event`` as received now (the server's, or one the library makes, e.g. ``reconnecting``)."""
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
        if self.mic.readyState != "live":  # a failed connection ended it: a new one goes on where it was
            self.mic = self.mic.successor()
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
            data = await _answer(resp, path.lstrip("/"))
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
            if not isinstance(frame, AudioFrame):  # (an audio track: never)
                continue
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1)
                self.recording.add(pcm)
                self.mic.hear_back(pcm)

    @property
    def channel_open(self) -> bool:
        return self._channel.readyState == "open"

    def send(self, message: ClientWireMessage) -> None:
        self._channel.send(json.dumps(message))

    def send_raw(self, raw: str | bytes) -> None:
        """Sends ``raw`` as it is (tests of the server's validation)."""
        self._channel.send(raw)

    def find(
        self, predicate: Callable[[dict[str, Any]], bool], after: float = 0.0
    ) -> tuple[float, dict[str, Any]] | None:
        return next(((t, e) for t, e in self.events if t >= after and predicate(e)), None)

    async def event_at(self, index: int) -> tuple[float, dict[str, Any]] | None:
        """The ``index``-th event received (from 0), once it has come; None if the client closes first."""
        async with self._changed:
            while len(self.events) <= index and not self.closed:
                await self._changed.wait()
        return self.events[index] if len(self.events) > index else None

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
        """Hangs up. Where the line is still up and the call has not ended, the server is told first (``end``):
        a connection that just closes looks like a dropped line, which the server keeps the call for, for its
        client to come back (``PARLEY_RECONNECT_S``)."""
        if not self.closed and self.channel_open and self.find(lambda e: e["type"] == "ended") is None:
            self.send({"type": "end"})
            for _ in range(50):  # on the wire once aiortc's data channel has handed it to SCTP (at most 0.5 s)
                if not self._channel.bufferedAmount:
                    break
                await asyncio.sleep(0.01)
        self.closed = True
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
        await self._notify()  # readers of the events stop waiting
