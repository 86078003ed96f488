"""``POST /offer``: validate the offer, create the call's peer connection, answer."""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from server.audio.inbound import shorten_jitter_buffer
from server.dialogue.modes import DEFAULT_MODE, PERSONAS
from server.languages import DEFAULT_LANGUAGE, LANGUAGES

logger = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024
_LOOPBACK = ("127.", "::1")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class OfferError(ValueError):
    """What is wrong with an offer, in words, and the HTTP status that says so."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_offer(
    body: Any, default_mode: str | None = None, default_language: str | None = None
) -> tuple[str, str, str]:
    """(sdp, mode, language) from the request body, or OfferError saying what is wrong. A mode or language left
    out is the given default (a call token's first allowed one), else the server's."""
    if not isinstance(body, dict):
        raise OfferError("the body must be a JSON object")
    sdp, kind = body.get("sdp"), body.get("type")
    if kind != "offer":
        raise OfferError('"type" must be "offer"')
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OfferError('"sdp" must be an SDP offer (text starting with "v=0")')
    mode = body.get("mode", default_mode or DEFAULT_MODE)
    if not isinstance(mode, str) or mode not in PERSONAS:
        raise OfferError(f"unknown mode {mode!r}; use one of {', '.join(PERSONAS)}")
    language = body.get("language", default_language or DEFAULT_LANGUAGE)
    if not isinstance(language, str) or language not in LANGUAGES:
        raise OfferError(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    if not has_two_way_audio(sdp):
        raise OfferError("the offer has no audio m-line that both sends and receives")
    missing = [field for field in ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:") if field not in sdp]
    if missing:
        # aiortc would accept it and fail later, inside the connection: refuse it here, in words.
        raise OfferError(f"the SDP offer cannot be used: it has no {', '.join(f[2:-1] for f in missing)}")
    return sdp, mode, language


def has_two_way_audio(sdp: str) -> bool:
    for section in re.split(r"\r?\n(?=m=)", sdp)[1:]:
        if not section.startswith("m=audio ") or section.split(" ", 2)[1] == "0":
            continue
        directions = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", section, re.MULTILINE)
        if not directions or directions[0] == "sendrecv":
            return True
    return False


def loopback_only(sdp: str) -> str:
    """Drops the offer's non-loopback ICE candidates: in loopback mode we never send a check elsewhere."""
    lines = sdp.splitlines()
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") or (len(line.split()) > 4 and line.split()[4].startswith(_LOOPBACK))
    ]
    return "\r\n".join(kept) + "\r\n"


async def read_offer(
    request: web.Request, default_mode: str | None = None, default_language: str | None = None
) -> tuple[str, str, str]:
    too_large = OfferError(f"the offer is too large: at most {MAX_OFFER_BYTES} bytes", status=413)
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        raise too_large
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # bodies are never decompressed (server/drain.py): no bombs, no zlib errors
        raise OfferError(f"compressed offers are not accepted (Content-Encoding: {encoding[:40]})", status=415)
    try:
        raw = await request.content.read(MAX_OFFER_BYTES + 1)  # decoded: a compressed body is capped unpacked
    except RequestPayloadError as exc:  # e.g. "Content-Encoding: gzip" on a body that is not (found by fuzzing)
        raise OfferError(f"the body could not be read: {exc.args[0] if exc.args else 'bad payload'}") from exc
    if len(raw) > MAX_OFFER_BYTES:
        raise too_large
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OfferError("the body is not valid JSON") from exc
    return parse_offer(body, default_mode, default_language)


async def answer(pc: RTCPeerConnection, sdp: str, track: MediaStreamTrack, loopback: bool) -> RTCSessionDescription:
    """Answers ``sdp`` with ``track`` sent on the offer's audio m-line."""
    if loopback:
        sdp = loopback_only(sdp)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as exc:  # aiortc raises ValueError and others on SDP it cannot use
        raise OfferError(f"the SDP offer cannot be used: {exc}") from exc
    pc.addTrack(track)  # takes the audio transceiver the offer created
    shorten_jitter_buffer(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription


def new_session_id() -> str:
    return secrets.token_urlsafe(12)
