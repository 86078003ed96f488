"""The outgoing track: paced 20 ms frames, pts that never reset, silence right after clear(), audio that starts or
stops mid-wave faded over 5 ms instead of clicking."""

from __future__ import annotations

import time

import numpy as np

from server.audio.outbound import DECLICK_SAMPLES, FRAME_SAMPLES, OUT_RATE, OutputResampler, SpeechTrack


def tone(seconds: float, rate: int = OUT_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


async def test_frames_are_paced_on_the_clock_with_continuous_pts():
    track = SpeechTrack()
    started = time.monotonic()
    frames = [await track.next_frame() for _ in range(25)]
    elapsed = time.monotonic() - started
    # 25 frames: the first goes at once, the other 24 at 20 ms steps.
    assert 0.44 <= elapsed < 0.75, elapsed
    assert [f.pts for f in frames] == [i * FRAME_SAMPLES for i in range(25)]
    assert all(f.samples == FRAME_SAMPLES and f.sample_rate == OUT_RATE for f in frames)
    assert all(not f.to_ndarray().any() for f in frames)  # silence when idle
    track.stop()


async def test_clear_silences_the_next_frame_and_keeps_pts_running():
    done: list[str] = []
    track = SpeechTrack(on_segment_done=lambda s: done.append(s.text))
    segment = track.begin("a long sentence")
    track.write(segment, tone(2.0))
    track.finish(segment)
    loud = [await track.next_frame() for _ in range(10)]
    assert all(np.abs(f.to_ndarray()).max() > 10_000 for f in loud)
    playing = track.clear()
    assert playing is segment and segment.played == 10 * FRAME_SAMPLES
    assert abs(segment.played_fraction - 0.1) < 1e-6  # 0.2 s of 2 s
    after = [await track.next_frame() for _ in range(10)]
    assert all(not f.to_ndarray().any() for f in after)  # nothing audible after clear()
    assert [f.pts for f in loud + after] == [i * FRAME_SAMPLES for i in range(20)]
    assert not track.busy and done == []  # a cleared segment is never reported as played
    track.stop()


async def test_segments_play_in_order_and_report_when_done():
    started: list[str] = []
    done: list[str] = []
    track = SpeechTrack(
        on_segment_start=lambda s: started.append(s.text), on_segment_done=lambda s: done.append(s.text)
    )
    for text, seconds in (("one", 0.05), ("two", 0.03)):
        segment = track.begin(text)
        track.write(segment, tone(seconds))
        track.finish(segment)
    frames = [await track.next_frame() for _ in range(6)]
    assert started == ["one", "two"] and done == ["one", "two"]
    audio = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    end = int(0.08 * OUT_RATE)  # then silence, once the cut-off wave has faded out (5 ms)
    assert np.abs(audio[:end]).max() > 10_000 and not audio[end + DECLICK_SAMPLES :].any()
    track.stop()


async def test_an_unfinished_segment_waits_with_silence_for_more_audio():
    track = SpeechTrack()
    segment = track.begin("streaming")
    track.write(segment, tone(0.02))
    first, gap = await track.next_frame(), await track.next_frame()
    assert np.abs(first.to_ndarray()).max() > 10_000 and not gap.to_ndarray()[:, DECLICK_SAMPLES:].any()
    assert track.busy  # still expecting the rest of the sentence
    track.write(segment, tone(0.02))
    assert np.abs((await track.next_frame()).to_ndarray()).max() > 10_000
    track.stop()


def test_tts_audio_is_resampled_to_48k_without_losing_length():
    for rate in (16_000, 22_050, 24_000):
        resampler = OutputResampler(rate)
        source = tone(1.0, rate)
        out = np.concatenate(
            [resampler.push(source[: rate // 2]), resampler.push(source[rate // 2 :]), resampler.flush()]
        )
        assert abs(out.size - OUT_RATE) < 100, (rate, out.size)


async def test_aiortc_gets_opus_packets_that_decode_to_the_same_audio_with_continuous_pts():
    from aiortc.codecs.opus import OpusDecoder
    from aiortc.jitterbuffer import JitterFrame
    from av import Packet

    track = SpeechTrack()
    segment = track.begin("a tone")
    track.write(segment, tone(0.2))
    track.finish(segment)
    packets = [await track.recv() for _ in range(15)]  # 10 frames of tone, then silence
    assert all(isinstance(p, Packet) for p in packets)
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(15)]
    # As a receiver decodes them (aiortc's decoder, as in the Python client): stereo s16 at 48 kHz.
    decoder = OpusDecoder()
    frames = [f for p in packets for f in decoder.decode(JitterFrame(bytes(p), p.pts))]
    decoded = np.concatenate([f.to_ndarray().reshape(-1, 2)[:, 0] for f in frames])
    assert decoded.size == 15 * FRAME_SAMPLES
    # Same tone (after Opus's 6.5 ms look-ahead): level within 1 dB and 440 Hz, then silence.
    lag = 312
    sent, heard = tone(0.2)[: 9 * FRAME_SAMPLES], decoded[lag : lag + 9 * FRAME_SAMPLES].astype(np.float64)
    assert abs(20 * np.log10(np.sqrt(np.mean(heard**2)) / np.sqrt(np.mean(sent.astype(np.float64) ** 2)))) < 1
    spectrum = np.abs(np.fft.rfft(heard))
    assert abs(np.argmax(spectrum) * OUT_RATE / heard.size - 440) < 10
    assert np.abs(decoded[12 * FRAME_SAMPLES :]).max() < 100
    track.stop()


def test_audio_that_starts_or_is_cut_mid_wave_fades_instead_of_clicking():
    track = SpeechTrack()
    t = np.arange(OUT_RATE) / OUT_RATE
    loud = (0.5 * 32767 * np.cos(2 * np.pi * 440 * t)).astype(np.int16)  # starts at its peak
    segment = track.begin("a sentence that starts at full level")
    track.write(segment, loud)
    track.finish(segment)
    silent = np.zeros(FRAME_SAMPLES, dtype=np.int16)  # what was sent before
    frames = [track.take_frame() for _ in range(3)]
    track.clear()  # a barge-in: the wave is cut mid-way (at 60 ms: cos(2pi 440 * 0.06) is far from 0)
    assert abs(int(frames[-1][-1])) > 5_000
    frames += [track.take_frame() for _ in range(2)]
    audio = np.concatenate([silent, *frames]).astype(np.int32)
    assert np.abs(np.diff(audio)).max() < 2_000  # no step louder than the wave's own slope (~1,400 a sample)
    assert not frames[-1].any()  # silence right after the fade
    assert np.abs(frames[0][240:]).max() > 10_000  # the speech itself is untouched after 5 ms
    track.stop()
