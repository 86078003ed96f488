"""ICE settings for the server's peer connections and the page: STUN/TURN servers, TURN credentials that
expire, loopback-only candidates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

logger = logging.getLogger(__name__)


def parse_servers(raw: str) -> list[dict[str, Any]]:
    """``PARLEY_ICE_SERVERS``: a JSON list in the browser's RTCIceServer shape, e.g.
    ``[{"urls": "turn:turn.example.com:3478", "username": "parley", "credential": "..."}]``."""
    if not raw.strip():
        return []
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"PARLEY_ICE_SERVERS is not valid JSON: {exc}") from exc
    if not isinstance(servers, list) or not all(isinstance(s, dict) and s.get("urls") for s in servers):
        raise ValueError('PARLEY_ICE_SERVERS must be a JSON list of objects with "urls"')
    if any("credential" in s or "username" in s for s in servers):
        # /ice hands this list to every page: a password in it would be everybody's, and would never expire.
        raise ValueError(
            "PARLEY_ICE_SERVERS must not hold TURN passwords (every page would get them): use PARLEY_TURN_SECRET "
            "and PARLEY_TURN_URLS for TURN credentials that expire"
        )
    return [{"urls": s["urls"]} for s in servers]


def parse_turn_urls(raw: str) -> list[str]:
    """``PARLEY_TURN_URLS``: comma-separated ``turn:`` / ``turns:`` URLs of one coturn (or several sharing the
    secret)."""
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    bad = [u for u in urls if not u.startswith(("turn:", "turns:"))]
    if bad:
        raise ValueError(f"PARLEY_TURN_URLS: not a turn: or turns: URL: {bad[0]}")
    return urls


def turn_credential(secret: str, urls: list[str], name: str, ttl_s: int, now: float | None = None) -> dict[str, Any]:
    """A TURN server entry with a credential for coturn's ``use-auth-secret`` (the TURN REST API scheme): the
    username is ``<expiry, Unix time>:<name>``, the password base64(HMAC-SHA1(secret, username)). coturn refuses
    it for a new allocation once the expiry has passed; an allocation made before then lives on with its call."""
    username = f"{int(time.time() if now is None else now) + ttl_s}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"urls": urls, "username": username, "credential": base64.b64encode(digest).decode()}


def turn_name(secret: str, user: str | None) -> str:
    """The name in a page's TURN username. STUN sends usernames in clear, so never the app's user id itself: a
    keyed hash of it (coturn's per-user quota then counts per person), or a random name."""
    if user is None:
        return secrets.token_urlsafe(9)
    return hmac.new(secret.encode(), b"user:" + user.encode(), hashlib.sha256).hexdigest()[:16]


def configuration(servers: list[dict[str, Any]] | None = None) -> RTCConfiguration:
    # Never None: with no configuration aiortc would ask a public STUN server.
    return RTCConfiguration(iceServers=[RTCIceServer(**server) for server in servers or []])


def use_loopback_only() -> None:
    """Offer only 127.0.0.1 as a host candidate (tests, benchmarks, calls from this same machine).

    aioice's host address discovery skips loopback and has no setting for it, so its lookup function is
    replaced for this process.
    """

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback  # type: ignore[assignment]
    logger.info("ICE: loopback candidates only")
