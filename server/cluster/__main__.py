"""``python -m server.cluster [start] [--workers N]``: Parley workers on one host, under supervisord, behind HAProxy.

``start`` writes deploy/haproxy.cfg and deploy/supervisord.conf, filled in, into the run directory and runs
supervisord in the foreground (Ctrl-C drains every worker, then stops). ``render``: only writes (and checks) the
files, for hosts that run HAProxy and the workers under systemd (deploy/systemd/). ``restart``: a rolling
restart, one worker at a time, cutting no call that ends within the drain time. ``status``: each worker as
HAProxy sees it."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from server.cluster import files, runtime

DEFAULT_RUN_DIR = Path(".cluster")


def parse(argv: list[str] | None, environ: dict[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="start", choices=("start", "render", "restart", "status"))
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="configuration, sockets and logs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="default: one per core")
    parser.add_argument("--host", default=environ.get("PARLEY_HOST", "127.0.0.1"), help="HAProxy's public address")
    parser.add_argument("--port", type=int, default=int(environ.get("PARLEY_PORT", "8080")), help="plain http")
    parser.add_argument("--tls-cert", type=Path, help="a PEM (chain and key): HAProxy serves https on --tls-port")
    parser.add_argument("--tls-port", type=int, default=8443)
    parser.add_argument("--worker-base-port", type=int, default=10000, help="worker i listens on this + i")
    parser.add_argument("--agent-base-port", type=int, default=11000, help="worker i's agent check: this + i")
    parser.add_argument(
        "--offers-per-minute", type=int, default=int(environ.get("PARLEY_OFFERS_PER_MINUTE") or 20),
        help="per client address, for the whole host (in HAProxy); the workers' own limit is turned off",
    )  # fmt: skip
    parser.add_argument("--drain-s", type=float, default=float(environ.get("PARLEY_DRAIN_S") or 300))
    return parser.parse_args(argv)


def start(cluster: files.Cluster, environ: dict[str, str]) -> list[str]:
    """Writes and checks the configuration; returns supervisord's command line."""
    for tool in ("haproxy", "supervisord", "supervisorctl"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: scripts/setup.sh installs Debian's haproxy and supervisor")
    files.write(cluster)
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(cluster.haproxy_cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"HAProxy refused {cluster.haproxy_cfg}:\n{check.stdout}{check.stderr}")
    return ["supervisord", "-n", "-c", str(cluster.supervisord_conf)]


def main(argv: list[str] | None = None) -> int:
    environ = dict(os.environ)
    args = parse(argv, environ)
    run_dir = args.run_dir.resolve()
    try:
        if args.command == "restart":
            runtime.rolling_restart(run_dir, up_timeout_s=max(120.0, args.drain_s))
            return 0
        if args.command == "status":
            print(runtime.describe(run_dir))
            return 0
        cluster = files.Cluster(
            run_dir=run_dir, workers=args.workers, host=args.host, port=args.port, tls_port=args.tls_port,
            tls_cert=args.tls_cert, worker_base_port=args.worker_base_port, agent_base_port=args.agent_base_port,
            offers_per_minute=args.offers_per_minute, drain_s=args.drain_s,
        )  # fmt: skip
        command = start(cluster, environ)
        if args.command == "render":
            print(f"{cluster.haproxy_cfg}\n{cluster.supervisord_conf}")
            return 0
    except (OSError, ValueError, RuntimeError, TimeoutError) as exc:
        print(f"parley cluster: {exc}", file=sys.stderr)
        return 2
    urls = [f"http://{cluster.host}:{cluster.port}/"]
    if cluster.tls_cert is not None:
        urls.append(f"https://{cluster.host}:{cluster.tls_port}/")
    print(f"Parley cluster: {cluster.workers} workers behind HAProxy on {' and '.join(urls)}", flush=True)
    print(f"  configuration and logs in {run_dir}; status: python -m server.cluster status --run-dir {run_dir}")
    sys.stdout.flush()
    # supervisord takes this process's place, so Ctrl-C and SIGTERM reach it: it drains the workers, then stops.
    os.execvpe(command[0], command, files.worker_env(cluster, environ))
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
