"""Prometheus metrics, one registry per app (so tests can build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_calls = Gauge("parley_active_calls", "Calls in progress", registry=self.registry)
        self.calls = Counter("parley_calls", "Calls accepted", registry=self.registry)
        self.loop_stalls = Counter(
            "parley_event_loop_stalls", "Times the event loop was over 100 ms late", registry=self.registry
        )
        self.barge_ins = Counter("parley_barge_ins", "Replies interrupted by the person", registry=self.registry)
        self.response = Histogram(
            "parley_response_seconds",
            "End of the person's speech to the first reply frame sent",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stt = Histogram(
            "parley_stt_seconds", "Speech-to-text time per turn", buckets=_LATENCY_BUCKETS, registry=self.registry
        )

        self.frame_gap = Histogram(
            "parley_frame_gap_seconds",
            "Time between two outgoing 20 ms audio frames (pacing: should stay near 0.02)",
            buckets=(0.015, 0.021, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2, 0.5),
            registry=self.registry,
        )
        self.inbound_frames = Counter(
            "parley_inbound_frames", "Audio frames received from people", registry=self.registry
        )

    def observe_turn(self, response_ms: int, stt_ms: int | None) -> None:
        self.response.observe(response_ms / 1000)
        if stt_ms is not None:
            self.stt.observe(stt_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
