"""The per-frame shortcuts give the same results as the work they skip."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from av import AudioFrame
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from client.call import read_wav
from server.audio.inbound import WINDOW
from server.audio.speedups import ORIGINAL_AUDIO_LEVEL, audio_level_dbov
from server.audio.vad import SILENT_WINDOWS_BEFORE_SKIP, SileroModel, SpeechDetector
from server.providers.local import weights
from tests.conftest import shared_clip

CLIPS = ["en/harvard_what_joy_16k.wav", "en/librispeech_mr_quilter_16k.wav", "en/jfk_inaugural_16k.wav",
         "quiet_speech/fleurs_en_sonar_2_source_level_16k.wav", "nonspeech/laughter_16k.wav"]  # fmt: skip


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
    for _ in range(SILENT_WINDOWS_BEFORE_SKIP + 5):  # within a turn, every window is run
        stream(silence, between_turns=False)
    assert stream.skipped == 20


def speech_events(model: SileroModel, audio: np.ndarray, skip: bool) -> tuple[list[tuple[str, int]], int]:
    stream, detector, events = model.stream(), SpeechDetector(hangover_ms=700), []
    for i in range(audio.size // WINDOW):
        probability = stream(audio[i * WINDOW : (i + 1) * WINDOW], skip and not detector.speaking)
        if event := detector.update(probability):
            events.append((event.kind.value, event.at_ms))
    return events, stream.skipped


@pytest.mark.shared_audio
@pytest.mark.parametrize("name", CLIPS)
def test_skipping_digital_silence_keeps_the_turns_of_real_speech(name):
    """Real speech with digital silence around and between (as a muted microphone gives): the same turns, their
    onsets within one 32 ms window, whether long silence is run through Silero or skipped."""
    speech = read_wav(shared_clip(name), 16_000).astype(np.float32) / 32768
    gap = np.zeros(16_000, np.float32)
    audio = np.concatenate([gap, speech, gap, speech[:24_000], gap])
    model = SileroModel(weights.ensure(weights.SILERO_VAD))
    (every, _), (skipped, windows_skipped) = speech_events(model, audio, False), speech_events(model, audio, True)
    assert windows_skipped > 20
    assert [kind for kind, _ in skipped] == [kind for kind, _ in every]
    assert all(abs(a - b) <= 32 for (_, a), (_, b) in zip(skipped, every, strict=True))
