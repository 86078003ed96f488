"""The per-frame shortcuts give the same results as the work they skip."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from av import AudioFrame
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from server.audio.inbound import WINDOW
from server.audio.speedups import ORIGINAL_AUDIO_LEVEL, audio_level_dbov
from server.audio.vad import SILENT_WINDOWS_BEFORE_SKIP, SileroModel
from server.providers.local import weights


def frame_of(samples: np.ndarray) -> AudioFrame:
    frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = 48_000, 0, Fraction(1, 48_000)
    return frame


@settings(max_examples=200, deadline=None, derandomize=True)
@given(arrays(np.int16, 960, elements=st.integers(-32768, 32767)) | st.sampled_from([
    np.zeros(960, np.int16), np.full(960, 32767, np.int16), np.full(960, -32768, np.int16),
    np.ones(960, np.int16)]))  # fmt: skip
def test_the_audio_level_is_aiortcs_to_the_unit(samples):
    assert ORIGINAL_AUDIO_LEVEL.__module__ == "aiortc.rtp"
    assert audio_level_dbov(frame_of(samples)) == ORIGINAL_AUDIO_LEVEL(frame_of(samples))


def test_silero_skips_long_digital_silence_and_hears_speech_right_after():
    model = SileroModel(weights.ensure(weights.SILERO_VAD))
    stream = model.stream()
    silence = np.zeros(WINDOW, np.float32)
    for _ in range(SILENT_WINDOWS_BEFORE_SKIP + 20):
        assert stream(silence) < 0.1
    assert stream.skipped == 20
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(WINDOW) * 1e-3).astype(np.float32)  # quiet, but not digital silence: run
    stream(hiss)
    assert stream.skipped == 20
