"""A call relayed by a real coturn, configured from deploy/turnserver.conf; and what that coturn refuses.

The server runs as its own process in a network namespace of its own, joined to the test's namespace by a
veth pair; coturn listens on the test's end. The client's only ICE host address is loopback, which the server
cannot reach, so the only way its media can flow is through its TURN allocation: the call must be relayed.
The client gets its TURN credential as a page does (a call token minted with the API key, then ``GET /ice``);
the server makes its own per call from the same secret. The server's address (10.99.0.2) is private, which
the file refuses as a relay peer: the test allows it with ``allowed-peer-ip``, as an operator does for their
own media servers (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from bench.serverproc import ServerProcess
from parley.rtc import CallClient, fetch_ice_servers
from server.ice import turn_credential, use_loopback_only
from tests.fake_openai import KEY, FakeOpenAI
from tests.helpers import ROOT, settled

TURN_IP, SERVER_IP = "10.99.0.1", "10.99.0.2"
TURN_PORT = 3478
SECRET = "relay-test-secret"
TURN_URL = f"turn:{TURN_IP}:{TURN_PORT}"
API_KEY = "relay-test-api-key"


def why_not() -> str | None:
    """Why this machine cannot run the test, or None."""
    for tool, package in (
        ("turnserver", "coturn"),
        ("ip", "iproute2"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {package}; scripts/setup.sh --test installs coturn)"
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        # It adds network interfaces: only in a namespace of nothing but loopback, which vanishes with the run.
        return "needs a network namespace with only loopback (scripts/test.sh runs the tests in one, as root)"
    return None


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def server_netns() -> Iterator[list[str]]:
    """A network namespace for the server, linked to this one: TURN_IP here, SERVER_IP there. Yields the
    command prefix that runs a program inside it."""
    if reason := why_not():
        pytest.skip(reason)
    holder = subprocess.Popen(["unshare", "--net", "sleep", "3600"])
    try:
        ns = f"/proc/{holder.pid}/ns/net"
        for _ in range(100):  # until unshare has moved it into the new namespace
            if os.path.exists(ns) and os.readlink(ns) != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.02)
        inside = ["nsenter", f"--net={ns}"]
        sh("ip", "link", "add", "pturn0", "type", "veth", "peer", "name", "psrv0", "netns", str(holder.pid))
        sh("ip", "addr", "add", f"{TURN_IP}/24", "dev", "pturn0")
        sh("ip", "link", "set", "pturn0", "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", "psrv0")
        sh(*inside, "ip", "link", "set", "psrv0", "up")
        yield inside
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["ip", "link", "del", "pturn0"], capture_output=True)  # gone with the namespace already


@pytest.fixture
def coturn(server_netns: list[str], tmp_path: Path) -> Iterator[Path]:
    """coturn from the deployment guide's file: the secret filled in, addresses set for these namespaces, and the
    test's Parley server allowed as a peer (its address is private)."""
    example = (ROOT / "deploy" / "turnserver.conf").read_text()
    assert "use-auth-secret" in example and "static-auth-secret=CHANGE-ME-SECRET" in example
    assert "lt-cred-mech" not in example and "user=" not in example  # no static password
    for denied in ("127.0.0.0-127.255.255.255", "169.254.0.0-169.254.255.255", "10.0.0.0-10.255.255.255"):
        assert f"denied-peer-ip={denied}" in example
    lines = [line for line in example.replace("CHANGE-ME-SECRET", SECRET).splitlines()
             if not line.startswith("external-ip=")]  # fmt: skip
    lines += [f"allowed-peer-ip={SERVER_IP}", f"listening-ip={TURN_IP}", f"relay-ip={TURN_IP}",
              f"pidfile={tmp_path / 'turn.pid'}", f"log-file={tmp_path / 'turn.log'}", "simple-log",
              "verbose"]  # fmt: skip
    conf = tmp_path / "turnserver.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(["turnserver", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it listens (it takes TCP on the same port)
            with socket.socket() as probe:
                if probe.connect_ex((TURN_IP, TURN_PORT)) == 0:
                    break
            if proc.poll() is not None:
                pytest.fail(f"coturn exited: {(tmp_path / 'turn.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield tmp_path / "turn.log"
    finally:
        proc.terminate()
        proc.wait(10)


def nominated_local_type(call: CallClient) -> str | None:
    """The type of the client's ICE candidate that carries the call (host, srflx or relay)."""
    transport = call.pc.getSenders()[0].transport.transport
    pairs = transport._connection._nominated  # aioice keeps the nominated pair per component
    return pairs[1].local_candidate.type if 1 in pairs else None


async def mint(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with http.post(f"{url}/tokens", json={"mode": "chat"}, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["token"]


async def test_a_call_through_a_coturn_relay(server_netns, coturn):
    use_loopback_only()  # the client's only host address is 127.0.0.1: unreachable from the server
    fake = await FakeOpenAI(reply="Relayed and well.").start(host=TURN_IP)
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_ICE_LOOPBACK": "0", "PARLEY_TURN_SECRET": SECRET,
           "PARLEY_TURN_URLS": TURN_URL, "PARLEY_SIGNING_KEYS": "s" * 32, "PARLEY_API_KEYS": API_KEY}  # fmt: skip
    server = ServerProcess(env, host=SERVER_IP, prefix=server_netns)
    server.start()
    call: CallClient | None = None
    try:
        await server.wait_healthy(120)
        token = await mint(server.url)
        ice_servers = await fetch_ice_servers(server.url, token)  # as the page does: a fresh TURN credential
        assert [s.urls for s in ice_servers] == [[TURN_URL]] and ice_servers[0].username.count(":") == 1
        call = CallClient(server.url, token=token, ice_servers=ice_servers)
        await call.connect(timeout=60)
        await call.wait_listening(60)  # the greeting came through
        assert call.recording.last_loud() is not None
        asked = time.monotonic()
        call.send({"type": "text", "text": "are you there?"})
        _, reply = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 30, asked)
        assert reply["text"] == "Relayed and well."
        assert nominated_local_type(call) == "relay"
    finally:
        if call is not None:
            await call.close()
        server.stop()
        await fake.close()
    log = coturn.read_text(errors="replace")
    # The page's credential allocated a relay and bound a channel to the server (coturn logs this with
    # "verbose"); the server allocated one of its own with the credential of this call.
    assert f"user <{ice_servers[0].username}>: incoming packet CHANNEL_BIND processed, success" in log, log[-3000:]
    own = rf"user <\d+:{re.escape(call.session_id or '-')}>: incoming packet ALLOCATE processed, success"
    assert re.search(own, log), log[-3000:]


class Errors(asyncio.DatagramProtocol):
    """What a TURN relay endpoint reports: data sent through it that the relay refused."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)


async def allocate(username: str, password: str) -> tuple[asyncio.DatagramTransport, Errors]:
    return await create_turn_endpoint(Errors, (TURN_IP, TURN_PORT), username, password)  # type: ignore[return-value]


async def test_coturn_refuses_expired_and_forged_credentials(server_netns, coturn):
    fresh = turn_credential(SECRET, [TURN_URL], "fresh", ttl_s=300)
    transport, _ = await allocate(fresh["username"], fresh["credential"])
    transport.close()
    expired = turn_credential(SECRET, [TURN_URL], "late", ttl_s=300, now=time.time() - 301)
    forged = turn_credential("not-the-secret", [TURN_URL], "forger", ttl_s=300)
    for credential in (expired, forged):
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(credential["username"], credential["credential"])
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_coturn_refuses_to_relay_to_loopback_and_metadata_addresses(server_netns, coturn):
    credential = turn_credential(SECRET, [TURN_URL], "prober", ttl_s=300)
    transport, endpoint = await allocate(credential["username"], credential["credential"])
    probe = b"GET /latest/meta-data/ HTTP/1.0\r\n\r\n"
    try:
        for number, peer in enumerate((("127.0.0.1", 8080), ("169.254.169.254", 80), ("192.168.1.1", 80))):
            transport.sendto(probe, peer)
            assert await settled(lambda n=number: len(endpoint.errors) > n, 5), f"{peer} was not refused"
            refused = endpoint.errors[number]
            assert isinstance(refused, stun.TransactionFailed) and refused.response.attributes["ERROR-CODE"][0] == 403
        # A public address is relayed to, and so is the one private peer the operator allowed.
        bound = "CHANNEL_BIND processed, success"
        for peer in (("1.1.1.1", 9), (SERVER_IP, 9)):
            binds = coturn.read_text(errors="replace").count(bound)
            transport.sendto(probe, peer)
            assert await settled(lambda n=binds: coturn.read_text(errors="replace").count(bound) > n, 5), peer
        assert len(endpoint.errors) == 3
    finally:
        transport.close()
