"""Logs: one structured line per call event; no transcripts unless debugging."""

from __future__ import annotations

import json
import logging

from server.logs import JsonFormatter
from tests.fakes import FakeLLM, fake_providers


def test_json_lines_carry_the_call_and_event():
    record = logging.LogRecord("server.session", logging.INFO, __file__, 1, "call %s closed", ("abc",), None)
    record.call, record.event = "abc", "closed"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "call abc closed" and line["call"] == "abc" and line["event"] == "closed"
    assert line["level"] == "info" and line["ts"].endswith("Z")


async def test_transcripts_stay_out_of_the_logs_below_debug(start_server, call_client, caplog):
    caplog.set_level(logging.INFO)
    url = await start_server(fake_providers(llm=FakeLLM("My secret reply.")))
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening()
    call.send({"type": "text", "text": "my private words"})
    await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 10, greeted)
    turns = [r for r in caplog.records if getattr(r, "event", None) == "turn"]
    assert len(turns) == 1 and turns[0].call == call.session_id
    assert "my private words" not in caplog.text and "My secret reply" not in caplog.text
