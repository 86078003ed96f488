"""Inference threads: speech synthesis goes before text generation on the shared cores."""

from __future__ import annotations

import threading
import time

from server.providers.local.threads import SpeechFirst


def test_generation_waits_while_a_sentence_is_synthesized():
    gate = SpeechFirst(max_wait_s=10)
    order: list[str] = []
    synthesizing, release = threading.Event(), threading.Event()

    def synthesize() -> None:
        with gate.speaking():
            synthesizing.set()
            release.wait(10)
            order.append("sentence synthesized")

    def next_token() -> None:
        synthesizing.wait(10)
        gate.wait_for_speech()
        order.append("next token")

    threads = [threading.Thread(target=synthesize), threading.Thread(target=next_token)]
    for t in threads:
        t.start()
    synthesizing.wait(10)
    time.sleep(0.2)  # time enough for a gate that does not hold to let the token through first
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["sentence synthesized", "next token"]


def test_generation_is_never_starved():
    gate = SpeechFirst(max_wait_s=0.05)
    with gate.speaking():
        gate.wait_for_speech()  # returns after max_wait_s although synthesis goes on
    gate.wait_for_speech()  # and at once when nothing is being synthesized
