"""Hypothesis strategies for what clients send (tests/test_fuzz.py, tests/test_http_fuzz.py)."""

from __future__ import annotations

from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
known_keys = st.sampled_from(["type", "text", "mode", "language", "sdp"])
messages = st.dictionaries(known_keys | st.text(max_size=8), json_values | st.sampled_from(
    ["text", "mode", "reset", "end", "scorecard", "interview", "language", "chat", "en", "fr", "xx", "offer"]),
    max_size=5)  # fmt: skip


# -- nested JSON: deeper than the parser's recursion limit, and just around the server's depth limit -------------
def _nest(depth: int, openers: str) -> str:
    """``depth`` levels of arrays and objects (``openers`` cycles through ``[`` and ``{``) around a 0."""
    kinds = [openers[i % len(openers)] for i in range(depth)]
    head = "".join("[" if k == "[" else '{"k": ' for k in kinds)
    return head + "0" + "".join("]" if k == "[" else "}" for k in reversed(kinds))


nested_json = st.builds(
    _nest,
    st.integers(0, 40) | st.integers(900, 1100) | st.integers(1000, 8000),
    st.sampled_from(["[", "{", "[{", "{["]),
)
"""JSON text nested 0-40 levels (the limit is 16), around the interpreter's recursion limit, and far beyond it."""


# -- SDP: a real offer, with sections, candidates and attributes added or changed -------------------------------
special_addresses = st.sampled_from([
    "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "169.254.1.1", "fe80::1", "224.0.0.1", "239.255.255.250",
    "ff02::1", "0.0.0.0", "::", "255.255.255.255", "printer.local", "abc-123.local.", "example.com", "localhost",
    "192.168.1.20", "10.0.0.7", "203.0.113.9", "2001:db8::7", "", "not an address", "1.2.3", "[::1]",
])  # fmt: skip
candidate_addresses = special_addresses | st.ip_addresses().map(str)
sdp_tokens = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)


@st.composite
def candidate_lines(draw: st.DrawFn) -> str:
    fields = [
        draw(st.sampled_from(["1", "abc", "0"]) | sdp_tokens),  # foundation
        draw(st.sampled_from(["1", "2"]) | sdp_tokens),  # component
        draw(st.sampled_from(["udp", "UDP", "tcp"]) | sdp_tokens),
        draw(st.sampled_from(["2130706431", "1"]) | st.integers(-5, 2**33).map(str)),
        draw(candidate_addresses),
        draw(st.integers(-1, 70_000).map(str) | sdp_tokens),
        "typ",
        draw(st.sampled_from(["host", "srflx", "relay", "prflx"]) | sdp_tokens),
    ]
    cut = draw(st.integers(3, len(fields)))  # some lines are cut short
    return "a=candidate:" + " ".join(fields[:cut])


attribute_lines = st.one_of(
    candidate_lines(),
    st.builds("a={}:{}".format, st.sampled_from([
        "rtpmap", "fmtp", "extmap", "ssrc", "ssrc-group", "mid", "sctp-port", "max-message-size", "rtcp-fb",
        "setup", "ice-options", "group", "msid", "fingerprint", "ice-ufrag", "ice-pwd", "rtcp", "sctpmap",
    ]), sdp_tokens | st.integers(-(2**40), 2**40).map(str)),
    st.sampled_from(["a=sendrecv", "a=recvonly", "a=sendonly", "a=inactive", "a=rtcp-mux", "a=end-of-candidates"]),
)  # fmt: skip
media_lines = st.builds(
    "m={} {} {} {}".format,
    st.sampled_from(["audio", "video", "application", "text", "message"]) | sdp_tokens,
    st.sampled_from(["9", "0"]) | st.integers(0, 70_000).map(str),
    st.sampled_from(["UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP", "RTP/AVP"]) | sdp_tokens,
    st.sampled_from(["111", "0 8", "webrtc-datachannel", "96 97"]) | sdp_tokens,
)


@st.composite
def mutated_sdps(draw: st.DrawFn, sdp: str) -> str:
    """``sdp`` with up to 8 lines (m-lines, candidates, attributes) inserted at random places, some lines
    removed, or a run of many candidates (the cap is 64)."""
    lines = sdp.strip().split("\r\n")
    for _ in range(draw(st.integers(0, 3))):
        if len(lines) > 2:
            del lines[draw(st.integers(1, len(lines) - 1))]
    for line in draw(st.lists(st.one_of(attribute_lines, media_lines), max_size=8)):
        lines.insert(draw(st.integers(1, len(lines))), line)
    if draw(st.booleans()) and draw(st.booleans()):
        first_media = next(i for i, line in enumerate(lines) if line.startswith("m="))
        lines[first_media + 1 : first_media + 1] = [draw(candidate_lines())] * draw(st.integers(1, 80))
    return "\r\n".join(lines) + "\r\n"
