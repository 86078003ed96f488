"""The cluster's configuration: deploy/haproxy.cfg and deploy/supervisord.conf filled in for N workers, written
into a run directory, and the environment supervisord (and so every worker) runs with."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
STOP_MARGIN_S = 30.0  # beyond the drain: ending the calls left (<= 5 s) and exiting, with room to spare


@dataclass(frozen=True)
class Cluster:
    """One host's cluster: ``workers`` Parley workers behind HAProxy on ``host``:``port``.

    Worker i (1..N) serves HTTP on 127.0.0.1:(worker_base_port + i) and its agent check on
    127.0.0.1:(agent_base_port + i); its media uses UDP ports its own process gets from the OS."""

    run_dir: Path
    workers: int = os.cpu_count() or 1
    host: str = "127.0.0.1"
    port: int = 8080
    tls_port: int = 8443
    tls_cert: Path | None = None  # a PEM with the certificate chain and its key: HAProxy terminates TLS
    worker_base_port: int = 10000
    agent_base_port: int = 11000
    offers_per_minute: int = 20  # per client address, in HAProxy's stick table
    drain_s: float = 300.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.offers_per_minute < 1:
            raise ValueError("the offers per minute per address must be at least 1")
        for base in (self.worker_base_port, self.agent_base_port):
            if base < 1 or base + self.workers > 65535:
                raise ValueError("the worker and agent ports must lie between 1 and 65535")
        if self.tls_cert is not None and not self.tls_cert.is_file():
            raise ValueError(f"{self.tls_cert}: no such certificate file")

    def names(self) -> list[str]:
        return [f"w{i}" for i in range(1, self.workers + 1)]

    def worker_port(self, i: int) -> int:
        return self.worker_base_port + i

    def agent_port(self, i: int) -> int:
        return self.agent_base_port + i

    @property
    def haproxy_cfg(self) -> Path:
        return self.run_dir / "haproxy.cfg"

    @property
    def supervisord_conf(self) -> Path:
        return self.run_dir / "supervisord.conf"


def _template(name: str) -> Template:
    return Template((DEPLOY / name).read_text())


def haproxy_cfg(cluster: Cluster) -> str:
    binds = [f"    bind {cluster.host}:{cluster.port}"]
    if cluster.tls_cert is not None:
        cert = cluster.tls_cert.resolve()
        binds.append(f"    bind {cluster.host}:{cluster.tls_port} ssl crt {cert} alpn h2,http/1.1")
    servers = [
        f"    server {name} 127.0.0.1:{cluster.worker_port(i)} agent-port {cluster.agent_port(i)}"
        for i, name in enumerate(cluster.names(), start=1)
    ]
    return _template("haproxy.cfg").substitute(
        run_dir=cluster.run_dir.resolve(),
        deploy_dir=DEPLOY,
        bind="\n".join(binds),
        offers_per_minute=cluster.offers_per_minute,
        servers="\n".join(servers),
    )


def supervisord_conf(cluster: Cluster, haproxy: str = "/usr/sbin/haproxy") -> str:
    run_dir = cluster.run_dir.resolve()
    worker = _template("supervisord-worker.conf")
    workers = [
        worker.substitute(
            name=name,
            python=sys.executable,
            root=ROOT,
            port=cluster.worker_port(i),
            agent_port=cluster.agent_port(i),
            stop_wait_s=int(cluster.drain_s + STOP_MARGIN_S),
            run_dir=run_dir,
        )
        for i, name in enumerate(cluster.names(), start=1)
    ]
    return _template("supervisord.conf").substitute(
        run_dir=run_dir, haproxy=haproxy, worker_names=",".join(cluster.names()), workers="".join(workers)
    )


def write(cluster: Cluster) -> None:
    """Writes both files into the run directory (made if missing)."""
    cluster.run_dir.mkdir(parents=True, exist_ok=True)
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    cluster.haproxy_cfg.write_text(haproxy_cfg(cluster))
    cluster.supervisord_conf.write_text(supervisord_conf(cluster, haproxy))


def worker_env(cluster: Cluster, environ: dict[str, str]) -> dict[str, str]:
    """The environment for supervisord and its workers: the caller's, with what the cluster decides over it.

    HAProxy counts offers per address for the whole host, so the per-worker limit is off; the workers believe
    HAProxy's X-Forwarded-* (from 127.0.0.1, after any proxy the operator already trusts)."""
    trusted = [p for p in environ.get("PARLEY_TRUSTED_PROXIES", "").split(",") if p.strip()]
    if "127.0.0.1" not in trusted:
        trusted.append("127.0.0.1")
    env = {k: v for k, v in environ.items() if k not in ("PARLEY_HOST", "PARLEY_PORT", "PARLEY_AGENT_PORT")}
    env.update(
        PARLEY_OFFERS_PER_MINUTE="0",
        PARLEY_TRUSTED_PROXIES=",".join(trusted),
        PARLEY_DRAIN_S=str(cluster.drain_s),
    )
    return env
