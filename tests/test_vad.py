"""Speech detection: the state machine on scripted probabilities, then Silero on real and synthesized speech."""

from __future__ import annotations

import numpy as np
import pytest

from parley.audio import read_wav
from server.audio.inbound import WINDOW
from server.audio.vad import WINDOW_MS, SileroModel, SpeechDetector, VadEventKind
from server.providers.local import weights
from tests.helpers import shared_clip

START, PAUSE, RESUME, END = VadEventKind.START, VadEventKind.PAUSE, VadEventKind.RESUME, VadEventKind.END
ONSET, DROP = VadEventKind.ONSET, VadEventKind.DROP
TURN_EVENTS = (START, PAUSE, RESUME, END)


def run(
    detector: SpeechDetector, probabilities: list[float], kinds: tuple[VadEventKind, ...] = TURN_EVENTS
) -> list[tuple[VadEventKind, int]]:
    events = [detector.update(p) for p in probabilities]
    return [(e.kind, e.at_ms) for e in events if e is not None and e.kind in kinds]


def test_speech_is_confirmed_after_three_windows_and_dated_at_its_onset():
    detector = SpeechDetector(threshold=0.5, start_windows=3, hangover_ms=320)
    events = run(detector, [0.1, 0.1, 0.9, 0.8, 0.95] + [0.9] * 5 + [0.05] * 10)
    assert events == [(START, 2 * WINDOW_MS), (PAUSE, 10 * WINDOW_MS), (END, 10 * WINDOW_MS)]


def test_a_click_is_not_speech_and_hysteresis_keeps_a_soft_syllable():
    detector = SpeechDetector(threshold=0.5, start_windows=3, hangover_ms=320)
    assert run(detector, [0.9, 0.9, 0.1, 0.1, 0.1]) == []  # 64 ms click: never confirmed
    # 0.4 is below the start threshold but above the end threshold (0.35): no pause while speaking.
    events = run(detector, [0.9, 0.9, 0.9, 0.4, 0.4, 0.4, 0.9])
    assert [k for k, _ in events] == [START]


def test_an_onset_comes_at_the_first_speech_window_and_is_dropped_when_it_is_not_confirmed():
    everything = (ONSET, DROP, *TURN_EVENTS)
    detector = SpeechDetector(threshold=0.5, start_windows=3, hangover_ms=320)
    # A click: onset at once, dropped when it falls silent.
    assert run(detector, [0.1, 0.9, 0.9, 0.1], everything) == [(ONSET, WINDOW_MS), (DROP, WINDOW_MS)]
    # Speech: the onset, then the start dated at the same window.
    assert run(detector, [0.9, 0.9, 0.9], everything) == [(ONSET, 4 * WINDOW_MS), (START, 4 * WINDOW_MS)]
    # While the bot speaks the session asks for more windows: 6 windows of laughter do not confirm.
    laughing = SpeechDetector(threshold=0.5, start_windows=8, hangover_ms=320)
    assert [k for k, _ in run(laughing, [0.9] * 6 + [0.2], everything)] == [ONSET, DROP]
    # Undecided windows (between the thresholds) do not hold an onset open for ever.
    undecided = SpeechDetector(threshold=0.5, start_windows=3, hangover_ms=320)
    events = [k for k, _ in run(undecided, [0.9] + [0.45] * 20, everything)]
    assert events == [ONSET, DROP]


def test_a_pause_shorter_than_the_hangover_keeps_the_turn_open():
    detector = SpeechDetector(hangover_ms=700)
    pause = [0.0] * (600 // WINDOW_MS)
    events = run(detector, [0.9] * 10 + pause + [0.9] * 10 + [0.0] * 40)
    assert [k for k, _ in events] == [START, PAUSE, RESUME, PAUSE, END]


def test_the_turn_ends_exactly_after_the_hangover():
    detector = SpeechDetector(hangover_ms=640)
    windows = [0.9] * 10 + [0.0] * 30
    ends = [i for i, p in enumerate(windows) if (e := detector.update(p)) and e.kind is END]
    assert ends == [10 + 640 // WINDOW_MS - 1]


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    return SileroModel(weights.ensure(weights.SILERO_VAD))


def segment(model: SileroModel, pcm16k: np.ndarray, hangover_ms: int) -> list[tuple[VadEventKind, int]]:
    stream, detector = model.stream(), SpeechDetector(hangover_ms=hangover_ms)
    audio = pcm16k.astype(np.float32) / 32768
    events = []
    for i in range(0, audio.size - WINDOW + 1, WINDOW):
        if (e := detector.update(stream(audio[i : i + WINDOW]))) is not None and e.kind in TURN_EVENTS:
            events.append((e.kind, e.at_ms))
    return events


def trim(pcm: np.ndarray) -> np.ndarray:
    """Drops a recording's own leading and trailing quiet (20 ms frames under -40 dBFS), so gaps are exact."""
    frames = pcm[: pcm.size // 320 * 320].reshape(-1, 320).astype(np.float64)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 32768 * 10 ** (-40 / 20))
    return pcm[loud[0] * 320 : (loud[-1] + 1) * 320]


def two_utterances(first: np.ndarray, second: np.ndarray, gap_s: float) -> np.ndarray:
    pad = lambda s: np.zeros(int(s * 16_000), dtype=np.int16)  # noqa: E731
    return np.concatenate([pad(0.5), first, pad(gap_s), second, pad(2.5)])


def check_segmentation(model: SileroModel, first: np.ndarray, second: np.ndarray) -> None:
    first, second = trim(first), trim(second)
    audio = two_utterances(first, second, gap_s=1.2)
    # A 1.2 s gap with a 700 ms hang-over: two turns, each starting near its speech.
    events = segment(model, audio, hangover_ms=700)
    starts = [t for k, t in events if k is START]
    ends = [t for k, t in events if k is END]
    assert len(starts) == 2 and len(ends) == 2, events
    assert abs(starts[0] - 500) < 400
    second_onset_ms = (0.5 + first.size / 16_000 + 1.2) * 1000
    assert abs(starts[1] - second_onset_ms) < 400
    # With a 1.5 s hang-over, the gap is a thinking pause inside one turn.
    events = segment(model, audio, hangover_ms=1500)
    assert [k for k, _ in events].count(END) == 1 and [k for k, _ in events].count(START) == 1


def test_turns_on_speech_the_embedded_voice_says(silero, tts_speech):
    from server.audio.outbound import OUT_RATE

    def at16k(pcm48k: np.ndarray) -> np.ndarray:
        assert OUT_RATE == 48_000
        return pcm48k[::3]  # a plain decimation is enough for a VAD test of synthetic speech

    check_segmentation(
        silero,
        at16k(tts_speech("I would start with a load balancer in front of the web servers.")),
        at16k(tts_speech("Then I would add a cache.")),
    )


@pytest.mark.shared_audio
def test_turns_on_real_human_speech(silero):
    first = read_wav(shared_clip("en/harvard_what_joy_16k.wav"), 16_000)
    second = read_wav(shared_clip("en/librispeech_mr_quilter_16k.wav"), 16_000)
    check_segmentation(silero, first, second)


@pytest.mark.shared_audio
@pytest.mark.parametrize("name", ["esc50_car_horn", "noise_koala", "bird_robin"])
def test_noise_is_not_speech(silero, name):
    audio = read_wav(shared_clip(f"nonspeech/{name}_16k.wav"), 16_000)
    assert [k for k, _ in segment(silero, audio, 700) if k is START] == []


def test_dips_between_words_are_not_pauses():
    detector = SpeechDetector(hangover_ms=700, pause_ms=96)
    # Two quiet windows (64 ms) between words: no pause, so no speculative work is started and dropped.
    events = run(detector, [0.9] * 5 + [0.1] * 2 + [0.9] * 5 + [0.1] * 3 + [0.9] * 5)
    assert [k for k, _ in events] == [START, PAUSE, RESUME]
    assert events[1][1] == 12 * WINDOW_MS  # the pause is dated at the start of its silence
