"""Property-based fuzzing of what clients send: offers and data-channel messages get a clear refusal, never
an unexpected exception (which would be a 500, or a dead session)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from server.events import BadMessage, Command, ModeChange, Reset, TextInput, parse_client_message
from server.signalling import OfferError, parse_offer
from tests.strategies import json_values, messages


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
