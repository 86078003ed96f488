"""Property-based fuzzing of what clients send: offers and data-channel messages get a clear refusal, never
an unexpected exception (which would be a 500, or a dead session)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import safe_json
from server.events import BadMessage, Command, ModeChange, Reset, TextInput, parse_client_message
from server.sdp_guard import MAX_CANDIDATES, address_kind, filter_candidates
from server.signalling import OfferError, parse_offer
from tests.helpers import client_offer
from tests.strategies import json_values, messages, mutated_sdps, nested_json


@settings(max_examples=400, deadline=None, derandomize=True)  # the same cases on every run: CI stays repeatable
@given(st.one_of(messages.map(json.dumps), st.text(max_size=300), st.binary(max_size=300)))
def test_any_data_channel_message_is_understood_or_refused_in_words(raw):
    try:
        message = parse_client_message(raw)
    except BadMessage as exc:
        assert exc.code in ("bad_message", "too_large") and str(exc)
    else:
        assert isinstance(message, TextInput | ModeChange | Reset | Command)


@settings(max_examples=400, deadline=None, derandomize=True)  # the same cases on every run: CI stays repeatable
@given(st.one_of(messages, json_values))
def test_any_offer_body_is_accepted_or_refused_in_words(body):
    try:
        parse_offer(body)
    except OfferError as exc:
        assert exc.status == 400 and str(exc)


def test_the_cases_the_fuzzer_found():
    for raw in ('{"type": "mode", "mode": []}', '{"type": "mode", "mode": "chat", "language": {}}'):
        try:
            parse_client_message(raw)
        except BadMessage as exc:
            assert exc.code == "bad_message"
    for body in ({"sdp": "v=0", "type": "offer", "mode": ["chat"]}, {"sdp": "v=0", "type": "offer", "language": []}):
        try:
            parse_offer(body)
        except OfferError as exc:
            assert exc.status == 400


@settings(max_examples=200, deadline=None, derandomize=True)
@given(nested_json)
def test_nested_json_is_parsed_or_refused_in_words_by_both_parsers(text):
    depth = text.count("[") + text.count("{")  # one opener per level: the strategy nests around a single 0
    try:
        safe_json.loads(text)
    except safe_json.BadJson as exc:
        assert "nested too deeply" in str(exc) and depth > safe_json.MAX_DEPTH
    else:
        assert depth <= safe_json.MAX_DEPTH
    message = json.dumps({"type": "text", "text": "hi", "extra": 0})[:-1] + ', "deep": ' + text + "}"
    try:
        parse_client_message(message)
    except BadMessage as exc:  # nested too deeply, or over 16 KiB: a clear refusal either way
        assert exc.code in ("bad_message", "too_large") and str(exc)
    body = '{"sdp": "v=0", "type": "offer", "x": ' + text + "}"
    try:
        parse_offer(safe_json.loads(body))
    except safe_json.BadJson:  # read_offer's 400 "the body is nested too deeply"
        assert depth + 1 > safe_json.MAX_DEPTH
    except OfferError as exc:  # never a RecursionError, which was a 500
        assert exc.status == 400


@pytest.fixture(scope="module")
def real_offer() -> str:
    """An offer as aiortc makes it: one audio section and the data channel, with its candidates."""
    return asyncio.run(client_offer(channel=True))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_offer_sdp_is_refused_in_words_or_keeps_only_candidates_the_server_may_check(real_offer, data):
    sdp = data.draw(mutated_sdps(real_offer))
    try:
        parse_offer({"sdp": sdp, "type": "offer"})
    except OfferError as exc:
        assert exc.status == 400 and str(exc)
        return
    sections = re.findall(r"^m=(\S*)", sdp, re.M)
    assert sections.count("audio") == 1 and set(sections) <= {"audio", "application"}
    assert len(re.findall(r"^a=candidate:", sdp, re.M)) <= MAX_CANDIDATES
    for allowed in (frozenset(), frozenset({"loopback", "link-local", "multicast", "mdns"})):
        cleaned, _ = filter_candidates(sdp, allowed)
        for line in cleaned.splitlines():
            if line.startswith("a=candidate:"):
                fields = line.split()
                assert len(fields) >= 8 and address_kind(fields[4]) in (None, *allowed), line


def test_the_candidate_kinds():
    kinds = {a: address_kind(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "169.254.9.9", "fe80::1",
                                          "224.0.0.251", "ff02::fb", "0.0.0.0", "printer.local", "example.com",
                                          "192.168.1.2", "2001:db8::1", "203.0.113.5")}  # fmt: skip
    assert kinds == {
        "127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback", "169.254.9.9": "link-local",
        "fe80::1": "link-local", "224.0.0.251": "multicast", "ff02::fb": "multicast", "0.0.0.0": "unspecified",
        "printer.local": "mdns", "example.com": "name", "192.168.1.2": None, "2001:db8::1": None, "203.0.113.5": None,
    }  # fmt: skip
