"""The Kubernetes manifests of deploy/k8s/, checked offline: every document against the API schemas of recent
Kubernetes versions (kubernetes-validate, strict: an unknown or misspelt field fails), and what keeps calls alive
through restarts and scaling: the grace period covers the drain, readiness is /healthz, the preStop hook starts the
drain and waits for it, and the autoscaler reads a metric the workers export."""

from __future__ import annotations

import copy
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from server.config import Settings
from server.drain import CLOSE_WAIT_S
from tests.helpers import ROOT

K8S = ROOT / "deploy" / "k8s"
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())  # the oldest still-supported minor we aim at, newest


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def find(kind: str, name: str) -> dict[str, Any]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in {K8S}")


def worker() -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = find("Deployment", "parley")
    return deployment, deployment["spec"]["template"]["spec"]["containers"][0]


def env(container: dict[str, Any]) -> dict[str, str]:
    """The container's settings: its ConfigMaps' data, then its own env (which wins, as in Kubernetes); a value
    the pod gets from its own fields (``valueFrom``) as the pod on this machine would see it (loopback)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values |= find("ConfigMap", source["configMapRef"]["name"])["data"]
    return values | {e["name"]: e.get("value", "127.0.0.1") for e in container.get("env", [])}


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_document_validates_against_the_kubernetes_schema(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}),  # a typo
        lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds="330s"),  # a wrong type
        lambda d: d["spec"].pop("selector"),  # a required field
    ],
    ids=["misspelt field", "wrong type", "missing field"],
)
def test_a_broken_manifest_is_refused(break_it):
    broken = copy.deepcopy(find("Deployment", "parley"))
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_workers_settings_are_all_known_and_valid():
    # Settings.from_env ignores names it does not know: a misspelt one here would be silently lost.
    _, container = worker()
    values = env(container)
    known = {f"PARLEY_{f.name.upper()}" for f in fields(Settings)}
    assert set(values) <= known, set(values) - known
    settings = Settings.from_env(values)  # raises on a value it refuses
    assert settings.call_capacity() == 5 and all(settings.provider(s) == "openai" for s in ("stt", "llm", "tts"))


def test_a_worker_is_given_the_whole_drain_before_it_is_killed():
    deployment, container = worker()
    drain_s = float(env(container)["PARLEY_DRAIN_S"])
    assert drain_s >= 60  # minutes for calls to end, not seconds
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= drain_s + CLOSE_WAIT_S + 10
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_the_pre_stop_hook_starts_the_drain_and_waits_for_the_worker_to_exit():
    # The kubelet's own SIGTERM follows the hook; a second signal would end every call at once.
    _, container = worker()
    assert container["command"][:3] == ["python", "-m", "server"]  # PID 1, the process the hook signals
    script = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert re.search(r"kill -TERM 1\b", script)
    assert re.search(r"while kill -0 1\b.*; do sleep", script)


def test_readiness_is_healthz_and_liveness_survives_the_drain():
    _, container = worker()
    ready = container["readinessProbe"]["httpGet"]
    assert ready["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[ready["port"]] == int(env(container)["PARLEY_PORT"])
    assert int(env(container)["PARLEY_AGENT_PORT"]) == ports["agent"]
    # /healthz is 503 while draining: a liveness probe on it would kill a draining worker and its calls.
    assert container["livenessProbe"].get("httpGet", {}).get("path") != "/healthz"


def test_media_reaches_each_worker_on_its_node():
    deployment, container = worker()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    # HTTP on the node's own address, not on every interface of the node
    (host,) = [e for e in container["env"] if e["name"] == "PARLEY_HOST"]
    assert host["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    terms = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"


def test_services_budget_and_autoscaler_point_at_the_workers():
    deployment, _ = worker()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in (find("Service", "parley"), find("Service", "parley-workers")):
        assert service["spec"]["selector"].items() <= labels.items()
    assert find("Service", "parley-workers")["spec"]["clusterIP"] == "None"  # every worker's address, for HAProxy
    budget = find("PodDisruptionBudget", "parley")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = find("HorizontalPodAutoscaler", "parley")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "parley"}


def exported_gauges() -> set[str]:
    return set(re.findall(r'Gauge\(\s*"(\w+)"', (ROOT / "server" / "metrics.py").read_text()))


def test_the_autoscaler_reads_busy_call_slots_that_workers_export():
    hpa = find("HorizontalPodAutoscaler", "parley")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    assert name == "parley_call_slots_busy"
    # prometheus-adapter serves it under that name from the series Prometheus scrapes
    (rule,) = yaml.safe_load(find("ConfigMap", "parley-adapter-rules")["data"]["config.yaml"])["rules"]
    assert rule["name"]["as"] == name and name in rule["seriesQuery"]
    annotations = find("Deployment", "parley")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert name in exported_gauges()
