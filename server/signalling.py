"""``POST /offer``: validate the offer, create the call's peer connection, answer."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import Any, NamedTuple

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from server import safe_json, sdp_guard
from server.audio.inbound import shorten_jitter_buffer
from server.dialogue.modes import DEFAULT_MODE, PERSONAS
from server.languages import DEFAULT_LANGUAGE, LANGUAGES

logger = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024
BODY_TIMEOUT_S = 10.0  # PARLEY_HTTP_TIMEOUT_S: the whole body must arrive within this
_LOOPBACK = ("127.", "::1")
PROFILE_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")  # the page's random profile id: at least 96 bits, URL-safe
MAX_DISPLAY_NAME = 64


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
    try:
        sdp_guard.check_sections(sdp)  # before anything else reads the sections: no video is ever set up
    except sdp_guard.UnusableOffer as exc:
        raise OfferError(str(exc)) from exc
    if not has_two_way_audio(sdp):
        raise OfferError("the offer has no audio m-line that both sends and receives")
    missing = [field for field in ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:") if field not in sdp]
    if missing:
        # aiortc would accept it and fail later, inside the connection: refuse it here, in words.
        raise OfferError(f"the SDP offer cannot be used: it has no {', '.join(f[2:-1] for f in missing)}")
    return sdp, mode, language


class Offer(NamedTuple):
    sdp: str
    mode: str
    language: str
    profile: str | None = None  # the page's random profile id (a call token's user wins over it)
    display_name: str | None = None
    record: bool = False  # the person agreed to this call's recording (kept only where the server offers it)


def check_profile(profile: Any, display_name: Any = None) -> tuple[str | None, str | None]:
    """An offer's optional ``profile`` and ``display_name`` (the name stripped), or OfferError."""
    if profile is not None and (not isinstance(profile, str) or not PROFILE_ID.fullmatch(profile)):
        raise OfferError('"profile" must be 16 to 128 letters, digits, "-" or "_" (a random id the page keeps)')
    if display_name is not None:
        if not isinstance(display_name, str) or not display_name.strip() or not display_name.isprintable():
            raise OfferError('"display_name" must be printable text')
        display_name = display_name.strip()
        if len(display_name) > MAX_DISPLAY_NAME:
            raise OfferError(f'"display_name" is limited to {MAX_DISPLAY_NAME} characters')
    return profile, display_name


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
    request: web.Request,
    default_mode: str | None = None,
    default_language: str | None = None,
    timeout_s: float = BODY_TIMEOUT_S,
) -> Offer:
    body = await read_json(request, timeout_s)
    sdp, mode, language = parse_offer(body, default_mode, default_language)
    record = body.get("record", False)  # consent to this call's recording (ignored where the server offers none)
    if not isinstance(record, bool):
        raise OfferError('"record" must be true or false')
    return Offer(sdp, mode, language, *check_profile(body.get("profile"), body.get("display_name")), record)


async def read_json(request: web.Request, timeout_s: float = BODY_TIMEOUT_S) -> Any:
    """An offer's JSON body, read within ``timeout_s`` and at most ``MAX_OFFER_BYTES``, or OfferError."""
    too_large = OfferError(f"the offer is too large: at most {MAX_OFFER_BYTES} bytes", status=413)
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        raise too_large
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # bodies are never decompressed (server/drain.py): no bombs, no zlib errors
        raise OfferError(f"compressed offers are not accepted (Content-Encoding: {encoding[:40]})", status=415)
    try:
        async with asyncio.timeout(timeout_s):  # a client that trickles its body holds no handler for long
            raw = await read_body(request, MAX_OFFER_BYTES, too_large)
    except TimeoutError as exc:
        raise OfferError(f"the offer did not arrive within {timeout_s:g} s", status=408) from exc
    except RequestPayloadError as exc:  # e.g. "Content-Encoding: gzip" on a body that is not (found by fuzzing)
        raise OfferError(f"the body could not be read: {exc.args[0] if exc.args else 'bad payload'}") from exc
    try:
        return safe_json.loads(raw)
    except safe_json.BadJson as exc:
        raise OfferError(f"the body is {exc}") from exc


async def read_body(request: web.Request, limit: int, too_large: Exception) -> bytes:
    """The whole body, however it was split (TCP segments, chunked transfer), up to the cap: ``read(n)`` alone
    returns what has arrived so far, which cut offers sent in several writes short."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large
    return b"".join(chunks)


async def answer(
    pc: RTCPeerConnection,
    sdp: str,
    track: MediaStreamTrack,
    loopback: bool,
    allowed: frozenset[str] = frozenset(),
) -> RTCSessionDescription:
    """Answers ``sdp`` with ``track`` sent on the offer's audio m-line. Candidates the server must not check
    (server/sdp_guard.py; ``allowed``: the kinds the operator allows) are dropped first."""
    if loopback:
        sdp = loopback_only(sdp)
    sdp, dropped = sdp_guard.filter_candidates(sdp, allowed)
    if dropped:
        logger.info("offer: %d ICE candidates ignored (loopback, link-local, multicast, names or malformed)", dropped)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as exc:  # aiortc raises ValueError and others on SDP it cannot use
        raise OfferError(f"the SDP offer cannot be used: {exc}") from exc
    pc.addTrack(track)  # takes the audio transceiver the offer created
    shorten_jitter_buffer(pc)
    try:
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # an offer aiortc took but cannot answer, e.g. bundled sections without a=mid (fuzzing)
        raise OfferError(f"the SDP offer cannot be answered: {type(exc).__name__}") from exc
    return pc.localDescription


def new_session_id() -> str:
    return secrets.token_urlsafe(12)
