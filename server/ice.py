"""ICE settings for the server's peer connections."""

from __future__ import annotations

import json
import logging
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
    allowed = {"urls", "username", "credential"}
    return [{k: v for k, v in s.items() if k in allowed} for s in servers]


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
