"""A call relayed by a real coturn, configured from deploy/turnserver.conf.

The server runs as its own process in a network namespace of its own, joined to the test's namespace by a
veth pair; coturn listens on the test's end. The client's only ICE host address is loopback, which the server
cannot reach, so the only way its media can flow is through its TURN allocation: the call must be relayed.
Both sides are given the same PARLEY_ICE_SERVERS list, as the README says to do.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCIceServer

from bench.serverproc import ServerProcess
from client.call import CallClient
from server.ice import use_loopback_only
from tests.fake_openai import KEY, FakeOpenAI
from tests.helpers import ROOT

TURN_IP, SERVER_IP = "10.99.0.1", "10.99.0.2"
TURN_PORT = 3478
PASSWORD = "relay-test-password"
ICE_SERVERS = [{"urls": f"turn:{TURN_IP}:{TURN_PORT}", "username": "parley", "credential": PASSWORD}]


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
    """coturn from the README's example file: the password filled in, addresses set for these namespaces."""
    example = (ROOT / "deploy" / "turnserver.conf").read_text()
    assert "user=parley:CHANGE-ME-PASSWORD" in example and "realm=parley" in example and "lt-cred-mech" in example
    lines = [line for line in example.replace("CHANGE-ME-PASSWORD", PASSWORD).splitlines()
             if not line.startswith("external-ip=")]  # fmt: skip
    lines += [f"listening-ip={TURN_IP}", f"relay-ip={TURN_IP}", f"userdb={tmp_path / 'turndb'}",
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


async def test_a_call_through_a_coturn_relay(server_netns, coturn):
    use_loopback_only()  # the client's only host address is 127.0.0.1: unreachable from the server
    fake = await FakeOpenAI(reply="Relayed and well.").start(host=TURN_IP)
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, "PARLEY_STT": "openai", "PARLEY_LLM": "openai",
           "PARLEY_TTS": "openai", "PARLEY_ICE_LOOPBACK": "0",
           "PARLEY_ICE_SERVERS": json.dumps(ICE_SERVERS)}  # fmt: skip
    server = ServerProcess(env, host=SERVER_IP, prefix=server_netns)
    server.start()
    call = CallClient(server.url, mode="chat", ice_servers=[RTCIceServer(**s) for s in ICE_SERVERS])
    try:
        await server.wait_healthy(120)
        await call.connect(timeout=60)
        await call.wait_listening(60)  # the greeting came through
        assert call.recording.last_loud() is not None
        asked = time.monotonic()
        call.send({"type": "text", "text": "are you there?"})
        _, reply = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 30, asked)
        assert reply["text"] == "Relayed and well."
        assert nominated_local_type(call) == "relay"
    finally:
        await call.close()
        server.stop()
        await fake.close()
    log = coturn.read_text(errors="replace")
    # The configured user allocated a relay and bound a channel to a peer (coturn logs this with "verbose").
    assert "user <parley>: incoming packet CHANNEL_BIND processed, success" in log, log[-2000:]
