"""A running cluster, seen and steered through its own engines: HAProxy's runtime API (the stats socket in the
run directory) and supervisorctl. The rolling restart restarts one worker at a time and waits until HAProxy
sends it offers again before the next, so the host never loses more than one worker's share of room."""

from __future__ import annotations

import csv
import io
import logging
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

BACKEND = "parley"
POLL_S = 0.2


@dataclass(frozen=True)
class ServerState:
    """One worker as HAProxy sees it (``show stat``)."""

    name: str
    status: str  # UP, DOWN, DRAIN, MAINT, or a transition such as "DOWN 1/2"
    weight: int  # the agent's share of free call slots, as a weight out of 100
    check: str  # the last health check's status, e.g. L7OK, L4CON
    agent: str  # the last agent check's status, e.g. L7OK
    sessions: int  # HTTP connections now open to it (offers in flight: not calls)

    @property
    def takes_offers(self) -> bool:
        return self.status == "UP" and self.weight > 0


def haproxy_command(run_dir: Path, command: str, timeout_s: float = 5.0) -> str:
    """One command on HAProxy's runtime API; its whole answer."""
    path = run_dir / "haproxy.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise RuntimeError(f"no HAProxy answers at {path}: is a cluster running with --run-dir {run_dir}?") from exc
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def servers(run_dir: Path) -> dict[str, ServerState]:
    """The workers of the ``parley`` backend, by name."""
    text = haproxy_command(run_dir, "show stat").lstrip("# ")
    found: dict[str, ServerState] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("pxname") != BACKEND or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        found[row["svname"]] = ServerState(
            name=row["svname"],
            status=row["status"],
            weight=int(row["weight"] or 0),
            check=row.get("check_status", ""),
            agent=row.get("agent_status", ""),
            sessions=int(row["scur"] or 0),
        )
    return found


def supervisorctl(run_dir: Path, *args: str, timeout_s: float | None = None) -> str:
    """supervisorctl on this cluster's supervisord; its output (its exit status is not an error: `status` is
    non-zero when any program is not running)."""
    done = subprocess.run(
        ["supervisorctl", "-c", str(run_dir / "supervisord.conf"), *args],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def worker_names(run_dir: Path) -> list[str]:
    """The workers supervisord runs (``w1``, ``w2``, ...), in order."""
    names = [line.split()[0].split(":", 1)[1] for line in supervisorctl(run_dir, "status").splitlines()
             if line.startswith("workers:")]  # fmt: skip
    return sorted(names, key=lambda name: int(name[1:]))


def wait_taking_offers(run_dir: Path, name: str, timeout_s: float) -> float:
    """Waits until HAProxy has worker ``name`` up with room (health and agent); returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        state = servers(run_dir).get(name)
        if state is not None and state.takes_offers:
            return time.monotonic() - started
        time.sleep(POLL_S)
    raise TimeoutError(f"HAProxy did not have {name} up again within {timeout_s:.0f} s: {servers(run_dir).get(name)}")


def rolling_restart(run_dir: Path, up_timeout_s: float = 300.0, say: Callable[[str], None] = print) -> None:
    """Restarts every worker, one at a time. ``supervisorctl restart`` sends SIGTERM and waits while the worker
    drains (its calls go on until they end, up to PARLEY_DRAIN_S), then starts it; the next worker is restarted
    only once HAProxy sends this one offers again."""
    names = worker_names(run_dir)
    if not names:
        raise RuntimeError(f"no workers found: is the cluster of {run_dir} running?")
    for name in names:
        say(f"{name}: draining and restarting (waits for its calls to end)")
        started = time.monotonic()
        out = supervisorctl(run_dir, "restart", f"workers:{name}")
        if "ERROR" in out:
            raise RuntimeError(f"supervisorctl restart workers:{name}: {out.strip()}")
        restarted = time.monotonic() - started
        took = wait_taking_offers(run_dir, name, up_timeout_s)
        say(f"{name}: restarted after {restarted:.1f} s, taking offers again {took:.1f} s later")


def describe(run_dir: Path) -> str:
    """A table for people: each worker's state in HAProxy, and supervisord's view."""
    lines = [f"{'worker':8} {'haproxy':10} {'weight':>6}  {'health':8} {'agent':8}"]
    for state in servers(run_dir).values():
        lines.append(f"{state.name:8} {state.status:10} {state.weight:>6}  {state.check:8} {state.agent:8}")
    return "\n".join(lines) + "\n\n" + supervisorctl(run_dir, "status")
