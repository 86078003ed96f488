"""The cluster's configuration as python -m server.cluster fills it in (no process started: the real thing runs in
test_cluster.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.cluster import files


def test_each_worker_gets_its_ports_in_haproxy_and_supervisord(tmp_path: Path):
    cluster = files.Cluster(run_dir=tmp_path, workers=3, worker_base_port=7000, agent_base_port=7100, drain_s=60)
    haproxy = files.haproxy_cfg(cluster)
    assert re.findall(r"^\s+server (\S+) 127\.0\.0\.1:(\d+) agent-port (\d+)$", haproxy, re.M) == [
        ("w1", "7001", "7101"), ("w2", "7002", "7102"), ("w3", "7003", "7103"),
    ]  # fmt: skip
    assert "${" not in haproxy and f"stats socket {tmp_path}/haproxy.sock" in haproxy
    assert "ssl crt" not in haproxy  # no certificate, no https
    supervisord = files.supervisord_conf(cluster)
    assert re.findall(r"^command=.* -m server --host 127\.0\.0\.1 --port (\d+)$", supervisord, re.M) == [
        "7001",
        "7002",
        "7003",
    ]
    assert re.findall(r'^environment=PARLEY_AGENT_PORT="(\d+)"$', supervisord, re.M) == ["7101", "7102", "7103"]
    assert "programs=w1,w2,w3" in supervisord
    # supervisord waits out the whole drain and then some, so it never has to SIGKILL a draining worker.
    assert re.findall(r"^stopwaitsecs=(\d+)$", supervisord, re.M) == ["10", "90", "90", "90"]  # HAProxy, workers
    assert set(re.findall(r"^stopsignal=(\S+)$", supervisord, re.M)) == {"TERM", "USR1"}  # workers, HAProxy


def test_a_certificate_binds_https(tmp_path: Path):
    pem = tmp_path / "cert.pem"
    pem.write_text("not read here")
    haproxy = files.haproxy_cfg(files.Cluster(run_dir=tmp_path, workers=1, host="0.0.0.0", port=80, tls_port=443,
                                              tls_cert=pem))  # fmt: skip
    assert "    bind 0.0.0.0:80\n" in haproxy and f"    bind 0.0.0.0:443 ssl crt {pem} " in haproxy


def test_the_workers_leave_rate_limits_to_haproxy_and_believe_it():
    cluster = files.Cluster(run_dir=Path("/x"), workers=2, drain_s=120)
    env = files.worker_env(cluster, {"PARLEY_PORT": "9000", "OPENAI_API_KEY": "k", "PARLEY_OFFERS_PER_MINUTE": "5",
                                     "PARLEY_TRUSTED_PROXIES": "10.0.0.0/8"})  # fmt: skip
    assert env["PARLEY_OFFERS_PER_MINUTE"] == "0" and env["OPENAI_API_KEY"] == "k"
    assert env["PARLEY_TRUSTED_PROXIES"] == "10.0.0.0/8,127.0.0.1"  # an outer proxy the operator trusts stays
    assert float(env["PARLEY_DRAIN_S"]) == 120 and "PARLEY_PORT" not in env  # the port is HAProxy's


@pytest.mark.parametrize(
    ("change", "message"),
    [({"workers": 0}, "--workers"), ({"offers_per_minute": 0}, "offers per minute"),
     ({"worker_base_port": 65534, "workers": 4}, "ports"), ({"tls_cert": Path("/nonexistent.pem")}, "certificate")],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused(tmp_path: Path, change: dict, message: str):
    with pytest.raises(ValueError, match=message):
        files.Cluster(run_dir=tmp_path, **change)
