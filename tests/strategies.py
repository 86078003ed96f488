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
