"""The two measurements, timed at the client (monotonic clock).

Wall-clock anchors: ``Microphone.play_started_at`` is when the clip's first 20 ms frame left the microphone,
and the microphone is paced in real time, so sample k of the clip is "said" at play_started_at + k / 48000.
Reply audio is timed by ``Recording`` at frame arrival, and counts when a frame is louder than -45 dBFS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import rtp
from bench.clips import Clip
from parley.audio import SILENCE_DBFS
from parley.rtc import CallClient

Event = dict[str, Any]
TURN_TIMEOUT = 45.0  # seconds for STT + LLM + TTS on 2 slow cores, with margin
REPLY_TIMEOUT = 90.0  # a whole spoken reply (up to 100 tokens) to play out
GREETING_TIMEOUT = 60.0


def is_(kind: str, **fields: Any) -> Callable[[Event], bool]:
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


async def open_call(url: str, mode: str, echo_gain: float = 0.0, language: str = "en") -> CallClient:
    """A fresh call, returned once the bot's greeting has been played in full.

    This waits for the greeting's closing ``state: listening`` rather than using ``CallClient.wait_listening``
    (``speaking`` then ``listening``): the server starts the greeting when ICE connects, and a ``speaking``
    event sent before the ``events`` channel is open is dropped, so on a loaded machine it may never come.
    """
    rtp.install()  # before the call exists, so that its first packets are timed too
    call = CallClient(url, mode, language)
    call.mic.echo_gain = echo_gain  # loudspeakers without echo cancellation: from the greeting's first word
    connected = time.monotonic()
    await call.connect()
    try:
        await call.wait_for(is_("state", state="listening"), GREETING_TIMEOUT, connected)
    except TimeoutError:
        await call.close()
        events = [e for _, e in call.events]
        raise RuntimeError(f"no greeting within {GREETING_TIMEOUT:.0f} s; events: {events}") from None
    if call.find(is_("state", state="speaking"), connected) is None:
        print("  (the greeting's `state: speaking` event was lost: it was sent before the channel opened)")
    return call


async def play(call: CallClient, clip: Clip) -> float:
    """Plays the clip (the microphone sends silence after it); returns the monotonic time of its first sample."""
    call.mic.play(clip.pcm)
    await asyncio.wait_for(call.mic.finished.wait(), clip.duration_s + 10)
    assert call.mic.play_started_at is not None
    return call.mic.play_started_at


async def first_loud_after(call: CallClient, t: float, wait: float = 3.0) -> float | None:
    """The first loud frame after ``t``; waits a little, as the audio trails the data-channel event."""
    deadline = time.monotonic() + wait
    # Recording has no event to wait on; a 20 ms poll matches its frame period.
    while (found := call.recording.first_loud_after(t)) is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return found


def loud_indices(call: CallClient, start: float, end: float) -> list[int]:
    """Indexes of the recorded frames louder than -45 dBFS that arrived in [start, end)."""
    rec = call.recording
    return [
        i
        for i, (a, lv) in enumerate(zip(rec.arrivals, rec.levels, strict=True))
        if start <= a < end and lv > SILENCE_DBFS
    ]


def at_rtp(call: CallClient, index: int | None) -> float | None:
    """When the packet of recorded frame ``index`` reached the client (None if that cannot be told)."""
    times = rtp.frame_arrivals(call)
    return times[index] if times is not None and index is not None and index < len(times) else None


@dataclass
class TurnResult:
    clip: str
    latency_s: float | None  # end of speech -> first loud reply frame; None when the turn was not clean
    latency_rtp_s: float | None  # the same, timed at that frame's RTP packet arrival (before the jitter buffer)
    metrics: Event | None  # the server's own breakdown of this turn
    heard: str  # what the server transcribed
    note: str = ""
    event_to_audio_s: float | None = None  # the metrics event (sent as the first frame leaves) -> first loud frame


async def voice_to_voice(call: CallClient, clip: Clip) -> TurnResult:
    """One turn after the bot has finished speaking: play the clip, time the first reply audio, and wait for
    the reply to end so the next turn starts from silence, as a person answering would."""
    before = time.monotonic()
    started = await play(call, clip)
    end_of_speech = started + clip.end_s
    metrics_t, metrics = await call.wait_for(is_("metrics"), TURN_TIMEOUT, before)
    _, user = await call.wait_for(is_("transcript", role="user"), 5, before)
    first = await first_loud_after(call, end_of_speech)
    first_index = next(iter(loud_indices(call, end_of_speech, float("inf"))), None)
    ends = [e for t, e in call.events if before <= t <= metrics_t and e == {"type": "speech", "event": "end"}]
    await call.wait_for(is_("state", state="listening"), REPLY_TIMEOUT, metrics_t)
    # A clean turn is one utterance, answered after the clip ended. A reply that began before the end of the
    # clip means the VAD ended the turn inside it: a cut-off, not a latency.
    if metrics_t < end_of_speech or len(ends) != 1:
        return TurnResult(clip.name, None, None, metrics, user["text"], f"cut off ({len(ends)} speech ends)")
    if first is None:
        return TurnResult(clip.name, None, None, metrics, user["text"], "no reply audio above -45 dBFS")
    packet = at_rtp(call, first_index)
    return TurnResult(
        clip.name, first - end_of_speech, packet - end_of_speech if packet is not None else None,
        metrics, user["text"], event_to_audio_s=first - metrics_t,
    )  # fmt: skip


@dataclass
class BargeInResult:
    clip: str
    delay_s: float  # how long the bot had been speaking at the clip's speech onset
    flush_s: float | None  # speech onset -> the bot's last loud frame at the client
    flush_rtp_s: float | None  # the same, timed at that frame's RTP packet arrival
    interrupted_s: float | None  # speech onset -> the server's ``interrupted`` event at the client
    vad_s: float | None  # speech onset -> the server's ``speech start`` event at the client
    valid: bool  # the bot was still speaking at the onset: otherwise there was nothing to stop
    heard: str  # what the server says was played of the interrupted reply
    note: str = ""


PROMPTS = (
    "Tell me about your favourite city and what you like to do there.",
    "Describe how you would spend a perfect weekend, and why.",
    "Tell me about a book you liked and what it taught you.",
    "What do you like to cook, and how do you make it?",
)
AUDIBLE_BEFORE_S = 0.15  # the bot counts as speaking at the onset if a loud frame arrived this shortly before
LEAD_IN_S = 0.05  # silence kept before the barge-in clip's speech, so the onset lands when it was aimed


async def wait_audible(call: CallClient, budget_s: float) -> None:
    """Waits (up to ``budget_s``) until the last frames are loud: the synthesizer may be a sentence behind, and
    a barge-in during such a gap stops nothing."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        last = call.recording.last_loud()
        if last is not None and time.monotonic() - last < 0.06:
            return
        await asyncio.sleep(0.02)


async def barge_in(url: str, mode: str, clip: Clip, prompt: str, delay_s: float) -> BargeInResult:
    """A fresh call: ask a question by text (no STT wait), let the reply play ``delay_s``, then talk over it.

    A fresh call per trial keeps the trials independent: in one long call the model, seeing its earlier replies
    cut short in the history ("I would..."), starts answering in two-word fragments that leave nothing to cut.
    The end of the interrupted reply is the last loud frame that arrived before the next reply began (the
    server's next ``state: speaking``, sent as that reply's first frame leaves, so it reaches the client no
    later than the frame does); a reply that was not stopped shows up as a long flush time.
    """
    clip = clip.lead_in(LEAD_IN_S)
    call = await open_call(url, mode)
    try:
        asked = time.monotonic()
        call.send({"type": "text", "text": prompt})
        speaking_t, _ = await call.wait_for(is_("state", state="speaking"), TURN_TIMEOUT, asked)
        await asyncio.sleep(delay_s)
        await wait_audible(call, 1.0)
        before = time.monotonic()
        onset = await play(call, clip) + clip.onset_s
        # The clip's own reply (it is answered like any turn) bounds the interrupted one.
        try:
            next_t, _ = await call.wait_for(is_("state", state="speaking"), TURN_TIMEOUT, before)
        except TimeoutError:
            next_t = time.monotonic()
    finally:
        await call.close()
    interrupted = call.find(is_("interrupted"), before)
    vad = call.find(is_("speech", event="start"), before)
    finished = call.find(is_("transcript", role="assistant", interrupted=False), asked)  # the reply ran out
    loud_at = loud_indices(call, speaking_t, next_t)
    loud = [call.recording.arrivals[i] for i in loud_at]
    last_packet = at_rtp(call, loud_at[-1] if loud_at else None)
    audible = any(onset - AUDIBLE_BEFORE_S <= a <= onset + 0.02 for a in loud)
    over = finished is not None and (vad is None or finished[0] <= vad[0])
    valid = audible and not over
    note = "" if interrupted else "no interrupted event"
    if not valid:
        note = "reply over before the barge-in: not counted" if over else "bot silent at the onset: not counted"
    return BargeInResult(
        clip.name, onset - speaking_t,
        loud[-1] - onset if loud else None,
        last_packet - onset if last_packet is not None else None,
        interrupted[0] - onset if interrupted else None,
        vad[0] - onset if vad else None,
        valid, interrupted[1]["heard"] if interrupted else "", note,
    )  # fmt: skip
