"""What an offer may ask of the server (server/sdp_guard.py), against the running app with real aiortc peers:
one audio section and the data channel; a cap on candidates; no STUN check sent to a loopback, link-local,
multicast or named candidate unless allowed; and a call whose ICE never completes frees its slot within 5 s."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from parley.audio import Microphone
from server.app import CALLS, MODELS, create_app
from server.config import Settings
from server.sdp_guard import MAX_CANDIDATES, address_kind
from tests.fakes import fake_providers


async def started(aiohttp_client, settings: Settings):
    app = create_app(settings, lambda _s: fake_providers())
    client = await aiohttp_client(app)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    return app, client


class Peer:
    """A real aiortc client: microphone, the events channel, an offer it can change before it is sent."""

    def __init__(self, video: bool = False, second_audio: bool = False) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(Microphone())
        if video:
            self.pc.addTransceiver("video")
        if second_audio:
            self.pc.addTransceiver("audio")
        self.pc.createDataChannel("events")

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def apply(self, answer: dict) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def close(self) -> None:
        await self.pc.close()


@pytest.fixture
async def peers():
    made: list[Peer] = []

    def make(**kw) -> Peer:
        made.append(Peer(**kw))
        return made[-1]

    yield make
    for peer in made:
        await peer.close()


def with_candidates(sdp: str, lines: list[str], keep_own: bool = True) -> str:
    """``sdp`` with ``lines`` added to its first section's candidates (and its own removed unless ``keep_own``)."""
    out: list[str] = []
    added = False
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and not keep_own:
            continue
        if line == "a=end-of-candidates" and not added:
            out.extend(lines)
            added = True
        out.append(line)
    return "\r\n".join(out) + "\r\n"


async def post(client, sdp: str):
    resp = await client.post("/offer", json={"sdp": sdp, "type": "offer", "mode": "chat"})
    return resp.status, await resp.json()


@pytest.mark.parametrize(("shape", "words"), [({"video": True}, "video"), ({"second_audio": True}, "media sections")])
async def test_other_media_sections_are_refused_and_nothing_is_set_up(aiohttp_client, peers, shape, words):
    app, client = await started(aiohttp_client, Settings(ice_loopback=True))
    status, body = await post(client, await peers(**shape).offer())
    assert status == 400 and words in body["error"] and "only one audio section" in body["error"]
    assert app[CALLS] == {}  # no peer connection was made: no video is ever received, let alone decoded


async def test_too_many_candidates_are_refused(aiohttp_client, peers):
    app, client = await started(aiohttp_client, Settings(ice_loopback=True))
    many = [f"a=candidate:{i} 1 udp 2130706431 192.0.2.{i % 250 + 1} {10000 + i} typ host" for i in range(80)]
    status, body = await post(client, with_candidates(await peers().offer(), many))
    assert status == 400 and f"at most {MAX_CANDIDATES}" in body["error"]
    assert app[CALLS] == {}


class Trap(asyncio.DatagramProtocol):
    """A UDP port on loopback that records what reaches it (and never answers)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.append(data)


@pytest.fixture
async def trap():
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(Trap, local_addr=("127.0.0.1", 0))
    protocol.port = transport.get_extra_info("sockname")[1]
    yield protocol
    transport.close()


def stun_requests(trap: Trap) -> list[bytes]:
    return [d for d in trap.received if len(d) >= 20 and d[:2] == b"\x00\x01"]  # STUN Binding requests


FORBIDDEN = ["169.254.10.20 5000", "fe80::1 5000", "224.0.0.1 5000", "ff02::1 5000", "0.0.0.0 5000",
             "printer.local 5000", "example.com 5000"]  # fmt: skip


@pytest.mark.parametrize("allow", ["auto", ""])
async def test_candidates_the_server_must_not_check_are_ignored_unless_allowed(aiohttp_client, peers, trap, allow):
    """The offer names a loopback port (the trap) in place of its own candidate; the server sends STUN checks there
    only when loopback is allowed ("auto" in loopback mode, as the tests run). Link-local, multicast, unspecified
    and named candidates never reach its ICE agent."""
    app, client = await started(aiohttp_client, Settings(ice_loopback=True, ice_allow_candidates=allow))
    peer = peers()
    extra = [f"a=candidate:trap 1 udp 2130706431 127.0.0.1 {trap.port} typ host"]
    extra += [f"a=candidate:x{i} 1 udp 2130706431 {spec} typ host" for i, spec in enumerate(FORBIDDEN)]
    # Its own candidate left out, so the trap is the first pair the server checks (the call may still connect,
    # through the peer-reflexive candidate the client's own checks create).
    status, answer = await post(client, with_candidates(await peer.offer(), extra, keep_own=False))
    assert status == 200, answer
    call = app[CALLS][answer["session_id"]]
    ice = call.pc.getTransceivers()[0].receiver.transport.transport
    kinds = {address_kind(c.ip) for c in ice.getRemoteCandidates()}
    assert kinds <= ({None, "loopback"} if allow == "auto" else {None})
    await peer.apply(answer)
    await asyncio.sleep(2.0)  # aioice checks every pair within its first second
    if allow == "auto":
        assert stun_requests(trap), "loopback allowed: the trap should have been checked"
    else:
        assert stun_requests(trap) == [], "loopback not allowed, yet the server sent STUN checks to it"


async def status_of(client) -> dict:
    return await (await client.get("/status")).json()


@pytest.mark.parametrize("candidates", ["unreachable", "none"])
async def test_an_offer_whose_ice_never_completes_frees_its_slot_within_5_s(aiohttp_client, peers, trap, candidates):
    """A live peer whose offer names only a port that never answers (or no candidate at all), and which never
    uses the answer: its call holds the only slot, then lets go of it within PARLEY_CONNECT_TIMEOUT_S (5 s),
    well before the peer timeout (10 s) would have."""
    app, client = await started(aiohttp_client, Settings(ice_loopback=True, max_calls=1))
    assert Settings().connect_timeout_s == 5.0
    lines = [f"a=candidate:trap 1 udp 2130706431 127.0.0.1 {trap.port} typ host"] if candidates == "unreachable" else []
    status, answer = await post(client, with_candidates(await peers().offer(), lines, keep_own=False))
    assert status == 200, answer
    answered = time.monotonic()
    assert (await status_of(client))["active_calls"] == 1
    full_status, _ = await post(client, await peers().offer())
    assert full_status == 503  # the slot is held
    for _ in range(80):  # /status, as a balancer sees it, every 0.1 s for up to 8 s
        if not (await status_of(client))["active_calls"]:
            break
        await asyncio.sleep(0.1)
    freed_after = time.monotonic() - answered
    print(f"slot freed {freed_after:.2f} s after the answer")
    assert freed_after <= 5.5
    peer = peers()
    status, answer = await post(client, await peer.offer())
    assert status == 200  # a new offer at capacity 1 is admitted
    await peer.apply(answer)
    connected = asyncio.Event()
    peer.pc.on("connectionstatechange", lambda: peer.pc.connectionState == "connected" and connected.set())
    await asyncio.wait_for(connected.wait(), 10)


async def test_the_offer_is_answered_through_aiohttp_too(aiohttp_client, peers):
    """A plain offer still connects (the guard takes nothing a browser sends)."""
    _, client = await started(aiohttp_client, Settings(ice_loopback=True))
    peer = peers()
    async with aiohttp.ClientSession() as http:
        url = client.make_url("/offer")
        async with http.post(url, json={"sdp": await peer.offer(), "type": "offer", "mode": "chat"}) as resp:
            assert resp.status == 200
            answer = await resp.json()
    await peer.apply(answer)
    connected = asyncio.Event()
    peer.pc.on("connectionstatechange", lambda: peer.pc.connectionState == "connected" and connected.set())
    await asyncio.wait_for(connected.wait(), 10)


def test_the_candidate_kinds_an_operator_may_allow():
    assert Settings.from_env({"PARLEY_ICE_ALLOW_CANDIDATES": "loopback, mdns"}).ice_allow_candidates == "loopback, mdns"
    for raw in ("private", "loopback,everything"):
        with pytest.raises(ValueError, match="PARLEY_ICE_ALLOW_CANDIDATES"):
            Settings.from_env({"PARLEY_ICE_ALLOW_CANDIDATES": raw})
    with pytest.raises(ValueError, match="PARLEY_CONNECT_TIMEOUT_S"):
        Settings.from_env({"PARLEY_CONNECT_TIMEOUT_S": "0"})
