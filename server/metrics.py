"""Prometheus metrics, one registry per app (so tests can build many apps in one process)."""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from server import native_memory

if TYPE_CHECKING:
    from server.admission import CallSlots

STAGES = ("stt", "llm_first_token", "llm_first_sentence", "tts_first_audio")
_LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process's resident memory, open file descriptors and CPU (process_*), and Python's garbage collector
        # (python_gc_*): what an operator watches on a server left running for months.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        # What a leak would move: objects of calls and replies still alive (after hang-up they must go), tasks on
        # the event loop and threads. parley_live_calls above parley_active_calls means ended calls are kept.
        self.live_calls: weakref.WeakSet[object] = weakref.WeakSet()
        self.live_replies: weakref.WeakSet[object] = weakref.WeakSet()
        Gauge("parley_live_calls", "Call objects alive, ended ones not yet freed included",
              registry=self.registry).set_function(lambda: len(self.live_calls))  # fmt: skip
        Gauge("parley_live_replies", "Reply objects alive", registry=self.registry).set_function(
            lambda: len(self.live_replies)
        )
        Gauge("parley_event_loop_tasks", "Tasks on the event loop", registry=self.registry).set_function(_tasks)
        Gauge("parley_threads", "Threads of the process", registry=self.registry).set_function(threading.active_count)
        # Python's own: objects and small buffers its allocator holds. Flat over calls once they are collected.
        Gauge("parley_python_blocks", "Memory blocks held by Python's allocator (objects, small buffers)",
              registry=self.registry).set_function(sys.getallocatedblocks)  # fmt: skip
        if native_memory.available():  # the C heap (glibc): what is in use, and what is free but still held
            Gauge("parley_malloc_in_use_bytes", "Bytes malloc has handed out (model runtimes, codecs, Python)",
                  registry=self.registry).set_function(lambda: _heap(0))  # fmt: skip
            Gauge("parley_malloc_free_bytes", "Bytes free inside malloc's arenas, not all given back to the system",
                  registry=self.registry).set_function(lambda: _heap(1))  # fmt: skip
        self.active_calls = Gauge("parley_active_calls", "Calls in progress", registry=self.registry)
        self.calls = Counter("parley_calls", "Calls accepted", registry=self.registry)
        self.loop_stalls = Counter(
            "parley_event_loop_stalls", "Times the event loop was over 100 ms late", registry=self.registry
        )
        self.barge_ins = Counter("parley_barge_ins", "Replies interrupted by the person", registry=self.registry)
        self.false_starts = Counter(
            "parley_false_starts",
            "Sounds that paused the bot but were not confirmed as speech (it went on)",
            registry=self.registry,
        )
        self.response = Histogram(
            "parley_response_seconds",
            "End of the person's speech to the first reply frame sent",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stt = Histogram(
            "parley_stt_seconds", "Speech-to-text time per turn", buckets=_LATENCY_BUCKETS, registry=self.registry
        )
        self.stages = Histogram(
            "parley_turn_stage_seconds",
            "Per turn: stt (transcription), llm_first_token and llm_first_sentence (from the request), "
            "tts_first_audio (first sentence to its first audio)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backchannels = Counter(
            "parley_backchannels",
            "Speech over the bot that let it go on (mm-hm, yeah, a laugh): held, then resumed where it stopped",
            registry=self.registry,
        )
        self.continued_turns = Counter(
            "parley_continued_turns",
            "Turns the person took up again just after the bot began to answer: the two parts became one turn",
            registry=self.registry,
        )
        self.speculations_dropped = Counter(
            "parley_speculations_dropped",
            "Replies started during a pause and dropped because the person went on talking",
            registry=self.registry,
        )

        self.frame_gap = Histogram(
            "parley_frame_gap_seconds",
            "Time between two outgoing 20 ms audio frames (pacing: should stay near 0.02)",
            buckets=(0.015, 0.021, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2, 0.5),
            registry=self.registry,
        )
        # The record of calls (server/history/): a write that failed or was dropped cost a record, never the call.
        self.history_failures = Counter(
            "parley_history_failures", "History writes that failed (the database was down, locked or slow), by op",
            ["op"], registry=self.registry,
        )  # fmt: skip
        self.history_dropped = Counter(
            "parley_history_dropped", "History writes dropped because the writer's queue was full",
            registry=self.registry,
        )  # fmt: skip
        self.inbound_frames = Counter(
            "parley_inbound_frames", "Audio frames received from people", registry=self.registry
        )

    def watch_slots(self, slots: CallSlots) -> None:
        """Gauges of the node's call slots (server/admission.py ``CallSlots``): busy over capacity is what an
        autoscaler scales on (calls, not HTTP connections or CPU)."""
        Gauge("parley_call_slots_busy", "Call slots held: calls in progress and offers being set up",
              registry=self.registry).set_function(lambda: slots.busy)  # fmt: skip
        Gauge("parley_call_slots", "Call slots of this node (its capacity)", registry=self.registry).set_function(
            lambda: slots.capacity
        )

    def watch_history(self, pending: Callable[[], int]) -> None:
        """The history's writer (server/history/writer.py): writes waiting for the database."""
        Gauge("parley_history_pending_writes", "History writes queued, not yet in the database",
              registry=self.registry).set_function(pending)  # fmt: skip

    def observe_turn(self, report: Mapping[str, Any]) -> None:
        """A turn's ``metrics`` event fields, in ms."""
        self.response.observe(report["response_ms"] / 1000)
        if report.get("stt_ms") is not None:
            self.stt.observe(report["stt_ms"] / 1000)
        for stage in STAGES:
            if report.get(f"{stage}_ms") is not None:
                self.stages.labels(stage).observe(report[f"{stage}_ms"] / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # rendered from outside the loop
        return 0


def _heap(index: int) -> float:
    figures = native_memory.heap_bytes()
    return float(figures[index]) if figures else 0.0
