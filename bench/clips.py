"""The speech clips a benchmark plays, and where their speech starts and ends (Silero run on the clip itself).

The recordings are not in the repository. They are read at run time from ``--audio-dir``, which defaults to
``$PARLEY_SHARED_AUDIO`` (as in the tests), else ``../shared/audio`` beside the checkout. Layout: a folder per
language code (``en/``, ``fr/``, ...) of 16-bit PCM mono WAV clips, each as ``<name>_48k.wav`` and
``<name>_16k.wav`` with its transcript in ``<name>.txt``, and ``nonspeech/`` (noise, music, laughter, a bird)
for ``bench.turn_taking``; a ``MANIFEST.tsv`` of sources and licences is kept beside them, read by nothing.
Public sources: LibriSpeech, FLEURS, Common Voice (and ESC-50 for non-speech). bench/README.md, "Recorded
speech", says how to build such a folder; without one these benches stop with a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from parley.audio import RATE, read_wav
from server.audio.inbound import VAD_RATE, WINDOW
from server.audio.vad import SileroModel
from server.providers.local import weights

THRESHOLD = 0.5  # Silero's usual speech threshold, the same as the server's default
ONSET_RUN = 3  # a speech onset is the first of 3 consecutive speech windows (96 ms): a click is not speech
MAX_DURATION_S = 7.0  # a few seconds each, so the whole run stays short
# An internal pause longer than this could end the turn inside the clip (the chat hang-over is 700 ms), and
# the bot would then answer half a sentence: such clips measure turn-taking, not latency.
MAX_INNER_GAP_S = 0.4

# The tests read the same folder (tests/conftest.py); ../shared/audio is where the developers keep it.
_BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "audio"
DEFAULT_AUDIO_DIR = Path(os.environ.get("PARLEY_SHARED_AUDIO") or _BESIDE_CHECKOUT)
AUDIO_DIR_HELP = (
    "folder of recorded speech: <language>/<name>_48k.wav, _16k.wav and <name>.txt, nonspeech/ (see 'Recorded "
    "speech' in bench/README.md); default $PARLEY_SHARED_AUDIO, else ../shared/audio beside the checkout"
)


@dataclass(frozen=True)
class Clip:
    name: str
    pcm: np.ndarray  # int16 mono at 48 kHz, exactly what the microphone plays
    onset_s: float  # first speech sample, from the start of the clip
    end_s: float  # last speech sample, from the start of the clip
    longest_gap_s: float  # longest pause between speech windows
    transcript: str

    @property
    def duration_s(self) -> float:
        return self.pcm.size / RATE

    def lead_in(self, seconds: float) -> Clip:
        """The clip with its leading silence cut to ``seconds``, so its onset comes at a known, short delay."""
        cut = max(0, int((self.onset_s - seconds) * RATE))
        shift = cut / RATE
        return replace(self, pcm=self.pcm[cut:], onset_s=self.onset_s - shift, end_s=self.end_s - shift)


def speech_bounds(pcm48: np.ndarray, model: SileroModel) -> tuple[float, float, float]:
    """(onset, end, longest gap) in seconds, from Silero run on 512-sample windows of the clip at 16 kHz.

    The 48 kHz clip is resampled here (rather than reading the ``_16k`` file) so the analysis sees exactly the
    samples that are played. Window precision: 32 ms.
    """
    audio = read_wav_16k(pcm48)
    stream = model.stream()
    probs = np.array([stream(audio[i : i + WINDOW]) for i in range(0, audio.size - WINDOW + 1, WINDOW)])
    speech = np.flatnonzero(probs >= THRESHOLD)
    if speech.size == 0:
        raise ValueError("no speech found")
    onset = next(
        (int(i) for i in speech if np.all(probs[i : i + ONSET_RUN] >= THRESHOLD) and i + ONSET_RUN <= probs.size),
        int(speech[0]),
    )
    end = int(speech[-1]) + 1  # the end of the last speech window
    gaps = np.diff(speech[speech >= onset]) - 1
    window_s = WINDOW / VAD_RATE
    return onset * window_s, end * window_s, float(gaps.max(initial=0)) * window_s


def read_wav_16k(pcm48: np.ndarray) -> np.ndarray:
    """int16 48 kHz -> float32 16 kHz with libswresample, the resampler the server's inbound path uses."""
    from av import AudioFrame, AudioResampler

    resampler = AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
    frame = AudioFrame.from_ndarray(pcm48.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    frames = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def english_clips(audio_dir: Path) -> tuple[list[Clip], list[str]]:
    """The single-speaker English clips fit for a latency run, by name; and why the others were skipped."""
    folder = audio_dir / "en"
    paths = sorted(folder.glob("*_48k.wav"))
    if not paths:
        raise FileNotFoundError(
            f"no *_48k.wav clips in {folder}: give --audio-dir a folder of recorded speech "
            "(see 'Recorded speech' in bench/README.md)"
        )
    model = SileroModel(weights.ensure(weights.SILERO_VAD))
    clips: list[Clip] = []
    skipped: list[str] = []
    for path in paths:
        name = path.name.removesuffix("_48k.wav")
        pcm = read_wav(path, RATE)
        if pcm.size / RATE > MAX_DURATION_S:
            skipped.append(f"{name} (longer than {MAX_DURATION_S:.0f} s)")
            continue
        try:
            onset, end, gap = speech_bounds(pcm, model)
        except ValueError:
            skipped.append(f"{name} (no speech found)")
            continue
        if gap > MAX_INNER_GAP_S:
            skipped.append(f"{name} (a {gap * 1000:.0f} ms pause inside)")
            continue
        text_path = folder / f"{name}.txt"
        transcript = text_path.read_text(encoding="utf-8").strip() if text_path.is_file() else ""
        clips.append(Clip(name, pcm, onset, end, gap, transcript))
    return interleave(clips), skipped


def interleave(clips: list[Clip]) -> list[Clip]:
    """Round-robin over the source corpora (fleurs, harvard, librispeech, ...), so that ``--clips 6`` gets six
    different voices and recording conditions rather than the first six files by name."""
    groups: dict[str, list[Clip]] = {}
    for clip in clips:
        groups.setdefault(clip.name.split("_")[0], []).append(clip)
    ordered: list[Clip] = []
    while any(groups.values()):
        for group in groups.values():
            if group:
                ordered.append(group.pop(0))
    return ordered
