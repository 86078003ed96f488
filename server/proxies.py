"""Requests through trusted proxies (``PARLEY_TRUSTED_PROXIES``): only when a request's TCP peer is one of them
are its ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` believed, so ``request.remote``,
``scheme`` and ``host`` name the real caller for the same-origin check, the per-address offer rate limit and the
per-address call cap. Anyone else's forwarding headers are ignored, not refused: a caller could write them.

aiohttp-remotes' ``XForwardedStrict`` answers 400 to a request from a peer not in its list, which would refuse
callers who reach a worker directly; so this is a small middleware on aiohttp's own ``request.clone``."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, web

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_trusted(raw: str) -> list[Network]:
    """``10.0.0.5, 10.1.0.0/16, ::1``: addresses and CIDR networks; ValueError naming the setting."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"PARLEY_TRUSTED_PROXIES: {part!r} is not an IP address or network") from exc
    return networks


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener's ::ffff:10.0.0.5 is 10.0.0.5
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def real_client(peer: str, forwarded_for: Sequence[str], networks: Sequence[Network]) -> str | None:
    """The caller's address: walking ``X-Forwarded-For`` from the right (each proxy appends the address it was
    called from), the first one not itself trusted; None when ``peer`` is not trusted (nothing is believed).
    An entry that is not an address, or a chain of trusted addresses only, stops at the last trusted hop."""
    hop = _address(peer)
    if hop is None or not _trusted(hop, networks):
        return None
    entries = [e for header in forwarded_for for e in header.split(",") if e.strip()]
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            break
        hop = address
        if not _trusted(address, networks):
            break
    return str(hop)


def _first(request: web.Request, name: str) -> str | None:
    values = [v.strip() for header in request.headers.getall(name, []) for v in header.split(",") if v.strip()]
    return values[0] if values else None


def forwarded(networks: Sequence[Network]) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The middleware: place it before anything that reads the caller's address, scheme or host."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = real_client(request.remote or "", request.headers.getall(hdrs.X_FORWARDED_FOR, []), networks)
        if client is None:
            return await handler(request)
        overrides: dict[str, str] = {"remote": client}
        if (scheme := (_first(request, hdrs.X_FORWARDED_PROTO) or "").lower()) in ("http", "https"):
            overrides["scheme"] = scheme
        if host := _first(request, hdrs.X_FORWARDED_HOST):
            overrides["host"] = host
        return await handler(request.clone(**overrides))

    return middleware
