"""Barge-in logic on scripted audio timelines: the hold at the first speech window, the stricter confirmation
while the bot speaks, and the echo gate. Real calls with echo and noise are in test_barge_in.py."""

from __future__ import annotations

import numpy as np

from server.audio.echo import EchoGate
from server.audio.hearing import Hearing
from server.audio.inbound import WINDOW
from server.audio.outbound import FRAME_SAMPLES, SpeechTrack
from server.audio.vad import VadEventKind
from server.turn_options import TurnOptions


class ScriptedVad:
    """Stands in for Silero: the probabilities of a scripted timeline, one per window."""

    def __init__(self, probabilities: list[float]) -> None:
        self._probabilities = iter(probabilities)

    def __call__(self, window: np.ndarray, between_turns: bool = True) -> float:
        return next(self._probabilities)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def voice(level: float, samples: int = WINDOW, rate: int = 16_000) -> np.ndarray:
    """A 200 Hz tone with RMS ``level`` (float, full scale 1)."""
    t = np.arange(samples) / rate
    return (level * np.sqrt(2) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def playing_track(seconds: float = 5.0) -> SpeechTrack:
    track = SpeechTrack()
    segment = track.begin("a long reply")
    track.write(segment, (voice(0.3, int(seconds * 48_000), 48_000) * 32767).astype(np.int16))
    track.finish(segment)
    return track


def hearing(probabilities: list[float], track: SpeechTrack, echo: EchoGate | None = None) -> Hearing:
    options = TurnOptions(vad_threshold=0.5, start_windows=3, barge_in_windows=8)
    return Hearing(ScriptedVad(probabilities), track, echo or EchoGate(), options, hangover_ms=700)


async def loud(track: SpeechTrack) -> bool:
    return bool(np.abs((await track.next_frame()).to_ndarray()).max() > 1000)


async def test_the_bot_pauses_at_the_first_speech_window_and_goes_on_from_the_same_word_after_a_laugh():
    track = playing_track()
    assert await loud(track)
    listener = hearing([0.9] * 6 + [0.1] * 11, track)
    assert listener.update(voice(0.1)) is None
    assert track.held and not await loud(track)  # the very next frame is silence
    played = track._segments[0].played
    events = [listener.update(voice(0.1)) for _ in range(6)]  # 6 windows of laughter, then quiet
    assert events == [None] * 6 and track.held  # ... for a moment: it may be a comma after "Wait"
    events = [listener.update(voice(0.1)) for _ in range(10)]
    assert events == [None] * 10 and not track.held
    assert await loud(track) and track._segments[0].played == played + FRAME_SAMPLES  # nothing was skipped
    track.stop()


async def test_a_comma_pause_early_in_a_barge_in_does_not_let_the_bot_go_on_between_the_words():
    track = playing_track()
    await track.next_frame()
    wait, comma, i_know = [0.9] * 6, [0.1] * 8, [0.9] * 8  # "Wait," 192 ms, a 256 ms pause, "I know ..."
    listener = hearing(wait + comma + i_know, track)
    held, kinds = [], []
    for _ in range(len(wait + comma + i_know)):
        event = listener.update(voice(0.1))
        kinds.append(event.kind if event else None)
        held.append(track.held)
    assert all(held[:-1]) and kinds[-1] is VadEventKind.START  # silent from "Wait" to the barge-in
    track.stop()


async def test_speech_over_the_bot_is_confirmed_after_eight_windows_and_quiet_speech_after_three():
    track = playing_track()
    await track.next_frame()
    listener = hearing([0.9] * 8, track)
    kinds = [e.kind if (e := listener.update(voice(0.1))) else None for _ in range(8)]
    assert kinds == [None] * 7 + [VadEventKind.START]
    track.clear()  # what the session does on START
    quiet = hearing([0.9] * 3, track)
    kinds = [e.kind if (e := quiet.update(voice(0.1))) else None for _ in range(3)]
    assert kinds == [None, None, VadEventKind.START]
    track.stop()


def test_the_echo_of_the_bot_is_gated_and_a_person_talking_over_it_is_not():
    clock = Clock()
    echo = EchoGate(clock)
    bot = voice(0.3, FRAME_SAMPLES, 48_000)
    for _ in range(20):  # 400 ms of the bot speaking
        echo.sent((bot * 32767).astype(np.int16))
        clock.now += 0.02
    # Its echo, 12 dB down, learned over a second of windows: all gated.
    assert all(echo.is_echo(voice(0.3 / 4)) for _ in range(30))
    assert 0.2 < echo.gain() < 0.3
    # The person, at the bot's own level: heard.
    assert not echo.is_echo(voice(0.3))
    # Nothing sent for longer than the echo path: nothing is gated.
    clock.now += 1.0
    assert not echo.is_echo(voice(0.01))


def test_with_echo_cancellation_a_quiet_person_still_barges_in():
    clock = Clock()
    echo = EchoGate(clock)
    for _ in range(30):
        echo.sent((voice(0.3, FRAME_SAMPLES, 48_000) * 32767).astype(np.int16))
        clock.now += 0.02
        echo.is_echo(voice(0.0005))  # what is left of the echo after cancellation: -66 dBFS
    assert not echo.is_echo(voice(0.01))  # a quiet talker, 30 dB under the bot


def test_echo_that_sounds_like_speech_neither_pauses_nor_interrupts_the_bot():
    clock = Clock()
    echo = EchoGate(clock)
    track = playing_track()
    track.on_sent = echo.sent
    listener = hearing([0.95] * 60, track, echo)  # Silero is sure: the echo is speech
    for _ in range(60):
        frame = (voice(0.3, FRAME_SAMPLES, 48_000) * 32767).astype(np.int16)
        echo.sent(frame)
        clock.now += 0.032
        assert listener.update(voice(0.3 / 4)) is None  # the echo, 12 dB down
        assert not track.held
    track.stop()


def test_a_person_who_stops_and_starts_again_over_the_bot_is_still_heard():
    # "Wait, ... I know this one": a first word too short to confirm, then the rest. Their voice must not
    # teach the echo gate that the echo is as loud as they are.
    clock = Clock()
    echo = EchoGate(clock)
    track = playing_track()
    probabilities = [0.0] * 30 + [0.95] * 6 + [0.0] * 5 + [0.95] * 10
    levels = [0.0] * 30 + [0.2] * 6 + [0.0] * 5 + [0.2] * 10
    listener = hearing(probabilities, track, echo)
    kinds = []
    for level in levels:
        echo.sent((voice(0.35, FRAME_SAMPLES, 48_000) * 32767).astype(np.int16))
        clock.now += 0.032
        if (event := listener.update(voice(level))) is not None:
            kinds.append(event.kind)
    assert kinds == [VadEventKind.START]
    track.stop()
