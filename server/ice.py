"""ICE settings for the server's peer connections."""

from __future__ import annotations

import logging

import aioice.ice
from aiortc import RTCConfiguration

logger = logging.getLogger(__name__)


def configuration() -> RTCConfiguration:
    # An explicit empty list: with no configuration aiortc would ask a public STUN server.
    return RTCConfiguration(iceServers=[])


def use_loopback_only() -> None:
    """Offer only 127.0.0.1 as a host candidate (tests, benchmarks, calls from this same machine).

    aioice's host address discovery skips loopback and has no setting for it, so its lookup function is
    replaced for this process.
    """

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback  # type: ignore[assignment]
    logger.info("ICE: loopback candidates only")
