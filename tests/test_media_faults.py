"""Media faults in real calls (aiortc on both sides): a peer that switches codec mid-call is still heard, and a
call's failing task is logged with the call's id."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from aiortc import RTCRtpTransceiver

from server.app import CALLS
from server.config import Settings
from tests.fakes import FakeSTT, fake_providers
from tests.helpers import chat_call, is_, until

QUESTION = "What is the difference between a process and a thread?"


def switch_codec(transceiver: RTCRtpTransceiver, mime_type: str) -> None:
    """Makes the client's sender encode with ``mime_type`` (one of the negotiated codecs) from its next frame on,
    with that codec's payload type, as a browser may do at any packet.

    aiortc has no API for it: its sender encodes for the codec object it was started with, so that object takes
    the new codec's values and the encoder is dropped (rebuilt for the new codec on the next frame). The
    client's receiver shares the object: it keeps a copy of the old one, so the bot's Opus still decodes."""
    codecs = transceiver._codecs
    sending = codecs[0]
    target = next(c for c in codecs if c.mimeType.lower() == mime_type.lower())
    receiver_codecs = transceiver.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
    receiver_codecs[sending.payloadType] = dataclasses.replace(sending)
    for field in ("mimeType", "clockRate", "channels", "payloadType", "parameters", "rtcpFeedback"):
        setattr(sending, field, getattr(target, field))
    transceiver.sender._RTCRtpSender__encoder = None  # type: ignore[attr-defined]


@pytest.mark.parametrize("codec", ["audio/PCMU", "audio/G722"])
async def test_a_codec_switch_mid_call_is_still_heard(
    start_server, call_client, started_apps, tts_speech, silence, codec
):
    stt = FakeSTT("first turn", "second turn")
    call, greeted = await chat_call(start_server, call_client, fake_providers(stt))
    answer = call.pc.remoteDescription.sdp
    assert "opus/48000" in answer and codec.split("/")[1] in answer  # all of them negotiated

    speech = np.concatenate([tts_speech(QUESTION), silence(1.5)])
    call.mic.play(speech)
    first_t, _ = await call.wait_for(is_("transcript", role="user", text="first turn"), 20, greeted)
    listening_t = await call.wait_listening(30, first_t)

    transceiver = next(t for t in call.pc.getTransceivers() if t.kind == "audio")
    switch_codec(transceiver, codec)
    call.mic.play(speech)
    start_t, _ = await call.wait_for(is_("speech", event="start"), 10, listening_t)
    await call.wait_for(is_("transcript", role="user", text="second turn"), 20, start_t)
    # The server heard the whole question again, in the new codec: about as long as the speech.
    heard_seconds = stt.calls[1][0]
    assert abs(heard_seconds - tts_speech(QUESTION).size / 48_000) < 0.8, heard_seconds
    assert not call.find(is_("ended")) and len(started_apps[-1][CALLS]) == 1


async def test_audio_in_a_payload_type_never_negotiated_ends_the_call_with_an_event(start_server, call_client):
    """aiortc drops packets of a payload type the answer does not have: no frame reaches the call, which then
    ends in words (the peer timeout, then the grace period for its client to reconnect) instead of staying open,
    deaf."""
    settings = Settings(ice_loopback=True, hangover_ms=500, peer_timeout_s=1.5, reconnect_s=1.0)
    url = await start_server(fake_providers(), settings)
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening(30)
    transceiver = next(t for t in call.pc.getTransceivers() if t.kind == "audio")
    assert "a=rtpmap:100 " not in call.pc.remoteDescription.sdp
    sending = transceiver._codecs[0]
    transceiver.receiver._RTCRtpReceiver__codecs[sending.payloadType] = dataclasses.replace(sending)  # type: ignore[attr-defined]
    sending.payloadType = 100  # still Opus inside, under a payload type the server never agreed to
    _, ended = await call.wait_for(is_("ended"), 10, greeted)
    assert ended["reason"] == "peer_gone"


async def test_a_failing_task_of_a_call_is_logged_with_its_id(start_server, call_client, started_apps, caplog):
    call, _ = await chat_call(start_server, call_client, fake_providers())
    server_call = started_apps[-1][CALLS][call.session_id]

    async def broken() -> None:
        raise RuntimeError("something inside the call broke")

    server_call.spawn(broken())
    await until(lambda: "something inside the call broke" in caplog.text, 5)
    record = next(r for r in caplog.records if r.exc_info and "broke" in str(r.exc_info[1]))
    assert record.levelno == logging.ERROR and call.session_id in record.getMessage()
    assert record.call == call.session_id and record.event == "task_failed"  # type: ignore[attr-defined]
