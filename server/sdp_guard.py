"""What an offer's SDP may hold before aiortc sees it.

- One audio section and the ``events`` data channel: any other media section (video, a second audio, text) is
  refused, so nothing but the call's audio is ever received or decoded.
- A bounded number of ICE candidates: each one is a check the server sends, and a pair it keeps.
- No candidate that would have the server send checks to itself (loopback), its own link (link-local), a multicast
  group, or a name it would have to look up (mDNS ``.local`` names, DNS names): an offer could otherwise point
  the server's STUN packets at services only it can reach. The operator may allow loopback, link-local,
  multicast and mDNS (``PARLEY_ICE_ALLOW_CANDIDATES``); unspecified addresses and DNS names are never used.
"""

from __future__ import annotations

import ipaddress
import logging
import re

logger = logging.getLogger(__name__)

MAX_SECTIONS = 2  # audio + application (the data channel)
MAX_CANDIDATES = 64  # a browser on a host with many interfaces offers some 10-20 per section
ALLOWABLE = ("loopback", "link-local", "multicast", "mdns")


class UnusableOffer(ValueError):
    """The SDP holds something this server does not take; the message says what, in words."""


def parse_allowed(raw: str, loopback_mode: bool) -> frozenset[str]:
    """``PARLEY_ICE_ALLOW_CANDIDATES``: ``auto`` (loopback in loopback mode, else nothing), or a comma-separated
    list of the kinds in ``ALLOWABLE`` (empty: none)."""
    raw = raw.strip().lower()
    if raw == "auto":
        return frozenset({"loopback"}) if loopback_mode else frozenset()
    kinds = {kind.strip() for kind in raw.split(",") if kind.strip()}
    unknown = kinds - set(ALLOWABLE)
    if unknown:
        raise ValueError(
            f"PARLEY_ICE_ALLOW_CANDIDATES: unknown {', '.join(sorted(unknown))}; use auto, or any of "
            f"{', '.join(ALLOWABLE)}"
        )
    return frozenset(kinds)


def check_sections(sdp: str) -> None:
    """Raises UnusableOffer unless the offer has at most one audio and one application section, and at most
    ``MAX_CANDIDATES`` candidates."""
    kinds = re.findall(r"^m=(\S*)", sdp, re.MULTILINE)
    if len(kinds) > MAX_SECTIONS or kinds.count("audio") > 1 or kinds.count("application") > 1:
        raise UnusableOffer(
            f"the offer has {len(kinds)} media sections ({', '.join(k[:20] for k in kinds[:8])}): "
            "only one audio section and the events data channel are accepted"
        )
    others = sorted({kind for kind in kinds if kind not in ("audio", "application")})
    if others:
        raise UnusableOffer(
            f"the offer has a {others[0][:20]} section: only one audio section and the events data channel are accepted"
        )
    mids: set[str] = set()
    for section in re.split(r"\r?\n(?=m=)", sdp)[1:]:
        # Browsers name every section (unified plan); without a name, or with another section's, aiortc matched
        # the bundle wrongly and failed half-way through its answer, and again when the call closed (fuzzing).
        names = re.findall(r"^a=mid:(\S+)", section, re.MULTILINE)
        if len(names) != 1 or names[0] in mids:
            raise UnusableOffer(f"the offer's {section[2:].split(' ', 1)[0][:20]} section needs an a=mid of its own")
        mids.add(names[0])
    count = len(re.findall(r"^a=candidate:", sdp, re.MULTILINE))
    if count > MAX_CANDIDATES:
        raise UnusableOffer(f"the offer has {count} ICE candidates; at most {MAX_CANDIDATES} are accepted")


def address_kind(address: str) -> str | None:
    """None for an ordinary unicast address; else what it is: one of ``ALLOWABLE``, ``unspecified`` or ``name``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "mdns" if address.lower().rstrip(".").endswith(".local") else "name"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    if ip.is_unspecified:
        return "unspecified"  # 0.0.0.0 reaches this host
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    return None


def filter_candidates(sdp: str, allowed: frozenset[str]) -> tuple[str, int]:
    """The SDP without the candidates the server must not check (and without malformed candidate lines, which
    aiortc would refuse whole); returns it and how many were dropped."""
    kept: list[str] = []
    dropped = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            kind = address_kind(fields[4]) if len(fields) >= 8 else "malformed"
            if kind is not None and kind not in allowed:
                dropped += 1
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", dropped
