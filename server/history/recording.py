"""Recording a consenting call (``PARLEY_RECORDING=on`` and the page's ``"record": true``): both sides in one
stereo Opus-in-Ogg file, left the person (as the server heard them) and right the bot (as it was sent), beside
the history's database in ``<data dir>/recordings/<call id>.ogg``, kept with the call's first session.

The event loop only stamps each chunk with the time it came and queues it (bounded: a full queue drops the chunk
and counts it); one thread per recording places the chunks on the call's clock and encodes them. A failure is
logged and counted (``parley_history_failures{op="recording"}``) and never reaches the call. The file is written
as ``.part`` and renamed when the call hangs up: a file under its final name is complete.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from av import AudioFrame

from server.audio.inbound import VAD_RATE
from server.audio.outbound import FRAME_SAMPLES, OUT_RATE
from server.config import Settings
from server.history import db

logger = logging.getLogger(__name__)

FOLDER = "recordings"
QUEUE_MAX = 1000  # chunks: about 10 s of both sides, far more than a busy machine falls behind
JITTER_S = 0.2  # a side's chunk that comes later than this after its last one follows a gap: silence is put in
MAX_LEAD_S = 2.0  # one side ahead of the other by more (it stopped coming): the other is padded with silence
PERSON, BOT = 0, 1
BIT_RATE = 48_000  # both voices, clear enough to hear one's own mistakes: about 21 MiB an hour


def folder(settings: Settings) -> Path:
    return db.data_dir(settings) / FOLDER


def path_for(settings: Settings, session_id: str) -> Path:
    """The recording of the call whose first session is ``session_id`` (a checked id: no path in it)."""
    return folder(settings) / f"{session_id}.ogg"


def prune(directory: Path, keep: Callable[[Path], bool]) -> int:
    """Deletes the finished recordings ``keep`` says no to; returns how many (blocking: run it on a thread)."""
    removed = 0
    for path in directory.glob("*.ogg") if directory.is_dir() else []:
        if not keep(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class CallRecording:
    """One call's recording; ``person`` and ``bot`` are called on the event loop and only queue."""

    def __init__(self, path: Path, on_failure: Callable[[], None]) -> None:
        self.path = path
        self._on_failure = on_failure
        self._queue: queue.Queue[tuple[int, float, np.ndarray]] = queue.Queue(maxsize=QUEUE_MAX)
        self._done = threading.Event()
        self._failed = False
        self.dropped = 0
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"recording-{path.stem}", daemon=True)
        self._thread.start()

    def person(self, window: np.ndarray) -> None:
        """A window of what the server heard: 16 kHz mono float32."""
        self._put(PERSON, window)

    def bot(self, pcm: np.ndarray) -> None:
        """A frame as it left: 48 kHz mono int16 (a fresh array per frame, never changed after)."""
        self._put(BOT, pcm)

    def finish(self) -> None:
        """The call hung up: what is queued is written, then the file is closed (on the recording's thread)."""
        self._done.set()

    def _put(self, side: int, samples: np.ndarray) -> None:
        if self._failed or self._done.is_set():
            return
        try:
            self._queue.put_nowait((side, time.monotonic(), samples))
        except queue.Full:
            self.dropped += 1

    # -- the recording's thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        part = self.path.with_suffix(".part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with av.open(str(part), "w", format="ogg") as container:
                stream = container.add_stream("libopus", rate=OUT_RATE, layout="stereo")
                stream.bit_rate = BIT_RATE
                self._encode(container, stream)
                for packet in stream.encode(None):
                    container.mux(packet)
            part.replace(self.path)
            logger.info("recording %s finished (%d chunks dropped)", self.path.name, self.dropped)
        except Exception:
            self._failed = True
            logger.exception("recording %s failed: the call goes on unrecorded", self.path.name)
            self._on_failure()
            part.unlink(missing_ok=True)

    def _encode(self, container: av.container.OutputContainer, stream: av.AudioStream) -> None:
        sides = [np.zeros(0, dtype=np.int16), np.zeros(0, dtype=np.int16)]
        placed = [0, 0]  # samples of each side so far, on the call's clock
        written = 0
        to_48k = _upsampler()
        while True:
            try:
                side, at, samples = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._done.is_set():
                    break
                continue
            pcm = to_48k(samples) if side == PERSON else samples
            due = int((at - self._start) * OUT_RATE) - pcm.size  # where this chunk starts, had it come on time
            if due - placed[side] > JITTER_S * OUT_RATE:  # a gap (no packets, a stalled track): silence
                sides[side] = np.concatenate([sides[side], np.zeros(due - placed[side], dtype=np.int16)])
                placed[side] = due
            sides[side] = np.concatenate([sides[side], pcm])
            placed[side] += pcm.size
            for one in (PERSON, BOT):
                lead = placed[1 - one] - placed[one] - int(MAX_LEAD_S * OUT_RATE)
                if lead > 0:
                    sides[one] = np.concatenate([sides[one], np.zeros(lead, dtype=np.int16)])
                    placed[one] += lead
            written = self._write(container, stream, sides, written)
        longest = -(-max(s.size for s in sides) // FRAME_SAMPLES) * FRAME_SAMPLES  # whole frames: Opus wants them
        sides = [np.concatenate([s, np.zeros(longest - s.size, dtype=np.int16)]) for s in sides]
        self._write(container, stream, sides, written)

    @staticmethod
    def _write(
        container: av.container.OutputContainer, stream: av.AudioStream, sides: list[np.ndarray], pts: int
    ) -> int:
        """Encodes the 20 ms frames both sides have, taking them off ``sides``."""
        count = min(s.size for s in sides)
        count -= count % FRAME_SAMPLES
        for begin in range(0, count, FRAME_SAMPLES):
            left, right = (s[begin : begin + FRAME_SAMPLES] for s in sides)
            frame = AudioFrame.from_ndarray(np.column_stack([left, right]).reshape(1, -1), format="s16",
                                            layout="stereo")  # fmt: skip
            frame.sample_rate = OUT_RATE
            frame.pts = pts
            pts += left.size
            for packet in stream.encode(frame):
                container.mux(packet)
        sides[:] = [s[count:] for s in sides]
        return pts


def _upsampler() -> Callable[[np.ndarray], np.ndarray]:
    """16 kHz float32 windows -> 48 kHz int16, through libswresample (its state carried from window to window, on the
    recording's own thread)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)

    def upsample(window: np.ndarray) -> np.ndarray:
        pcm = np.clip(np.rint(window * 32767.0), -32768, 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = VAD_RATE
        out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)

    return upsample
