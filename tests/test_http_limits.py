"""Bodies and slow clients, over raw sockets against the app served as ``python -m server`` serves it (the header
deadline of server/slow_clients.py in front of aiohttp): an offer sent in pieces or chunked is read whole, within
the 64 KiB cap; JSON nested too deeply is a 400 in words (it was a 500), and an ``error`` event on the data
channel, after which the call goes on; clients that trickle headers or a body are cut off."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from server import slow_clients
from server.app import CALLS, MODELS, create_app
from server.config import Settings
from server.serving import HANDLER_ARGS
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import chat_call, client_offer, is_

TIMEOUT_S = 1.0  # PARLEY_HTTP_TIMEOUT_S for these tests (default 10)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, int]]:
    app = create_app(Settings(ice_loopback=True, http_timeout_s=TIMEOUT_S, max_calls=50), lambda _s: fake_providers())
    runner = web.AppRunner(app, **HANDLER_ARGS)
    await runner.setup()
    listener = await slow_clients.listen(runner, "127.0.0.1", 0, TIMEOUT_S)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    yield listener.sockets[0].getsockname()[:2]
    listener.close()
    await runner.cleanup()


def head(length: int | None = None, chunked: bool = False) -> bytes:
    lines = ["POST /offer HTTP/1.1", "Host: parley", "Content-Type: application/json", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def answer_of(reader: asyncio.StreamReader, timeout_s: float = 10.0) -> tuple[int, dict]:
    raw = await asyncio.wait_for(reader.read(), timeout_s)  # Connection: close: the answer ends at EOF
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body)


def pieces(data: bytes, count: int) -> list[bytes]:
    size = -(-len(data) // count)
    return [data[i : i + size] for i in range(0, len(data), size)]


async def test_an_offer_written_in_pieces_is_read_whole(server):
    body = json.dumps({"sdp": await client_offer(), "type": "offer", "mode": "chat"}).encode()
    reader, writer = await asyncio.open_connection(*server)
    writer.write(head(len(body)))
    for piece in pieces(body, 4):
        await writer.drain()
        await asyncio.sleep(0.05)  # each piece in a TCP segment of its own
        writer.write(piece)
    status, answer = await answer_of(reader)
    writer.close()
    assert status == 200, answer
    assert answer["type"] == "answer" and "m=audio" in answer["sdp"]


def chunked(data: bytes, count: int) -> list[bytes]:
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces(data, count)] + [b"0\r\n\r\n"]


async def test_a_chunked_offer_is_read_whole_and_capped_at_64_kib(server):
    body = json.dumps({"sdp": await client_offer(), "type": "offer", "mode": "chat"}).encode()
    for data, expected in ((body, 200), (b'{"sdp": "' + b"x" * 70_000 + b'"}', 413)):
        reader, writer = await asyncio.open_connection(*server)
        writer.write(head(chunked=True))
        for chunk in chunked(data, 5):
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(chunk)
        status, answer = await answer_of(reader)
        writer.close()
        assert status == expected, answer
        assert expected == 200 or "too large" in answer["error"]


@pytest.mark.parametrize("depth", [17, 5000])
async def test_json_nested_too_deeply_is_a_400_in_words(server, depth):
    body = ("[" * depth + "]" * depth).encode()
    reader, writer = await asyncio.open_connection(*server)
    writer.write(head(len(body)) + body)
    status, answer = await answer_of(reader)
    writer.close()
    assert status == 400 and "nested too deeply" in answer["error"]


async def trickle_headers(host: str, port: int) -> float:
    """Sends a header line every 0.2 s for ever; returns the seconds until the server closes the connection."""
    reader, writer = await asyncio.open_connection(host, port)
    opened = time.monotonic()
    writer.write(b"POST /offer HTTP/1.1\r\nHost: parley\r\n")
    try:
        for i in range(100):
            await asyncio.sleep(0.2)
            writer.write(f"X-Slow-{i}: {i}\r\n".encode())
            await writer.drain()
            if reader.at_eof():
                break
            try:
                data = await asyncio.wait_for(reader.read(1), 0.01)
            except TimeoutError:
                continue
            assert data == b"", data  # nothing is answered to a request that never finished its headers
            break
    except ConnectionError:
        pass
    writer.close()
    return time.monotonic() - opened


async def test_clients_that_trickle_headers_are_cut_off_and_others_are_served(server):
    attackers = [asyncio.create_task(trickle_headers(*server)) for _ in range(20)]
    await asyncio.sleep(0.5)
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: parley\r\nConnection: close\r\n\r\n")
    status, health = await answer_of(reader, 2)
    writer.close()
    assert status == 200 and health["status"] == "ok"
    held = await asyncio.gather(*attackers)
    print(f"trickling clients cut off after {min(held):.2f}-{max(held):.2f} s (limit {TIMEOUT_S} s)")
    assert max(held) < TIMEOUT_S + 1.0


async def test_a_head_split_anywhere_is_a_request_and_the_connection_outlives_the_deadline(server):
    """The head's blank line split across two writes still counts; a connection whose first request came whole
    is not cut at the deadline: a second request on it, past the deadline, is answered."""
    reader, writer = await asyncio.open_connection(*server)
    for part in (b"GET /healthz HTTP/1.1\r\nHost: parley\r\n\r", b"\n"):
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.1)
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert first.startswith(b"HTTP/1.1 200")
    length = int(next(line for line in first.split(b"\r\n") if line.lower().startswith(b"content-length")).split()[1])
    await reader.readexactly(length)
    await asyncio.sleep(TIMEOUT_S + 0.5)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: parley\r\nConnection: close\r\n\r\n")
    status, health = await answer_of(reader, 2)
    writer.close()
    assert status == 200 and health["status"] == "ok"


async def test_a_client_that_trickles_its_body_gets_a_408(server):
    reader, writer = await asyncio.open_connection(*server)
    writer.write(head(5000))
    started = time.monotonic()

    async def trickle() -> None:
        for _ in range(100):
            await asyncio.sleep(0.2)
            writer.write(b'{"a": 1, ')
            await writer.drain()

    trickling = asyncio.create_task(trickle())
    try:
        status, answer = await answer_of(reader, TIMEOUT_S + 5)  # then aiohttp lingers 2 s on the unread body
    finally:
        trickling.cancel()
        writer.close()
    closed_after = time.monotonic() - started
    print(f"408 and closed {closed_after:.2f} s after the headers")
    assert status == 408 and "did not arrive" in answer["error"]
    assert closed_after < TIMEOUT_S + 3.5


async def test_a_data_channel_message_nested_too_deeply_is_an_error_and_the_call_goes_on(start_server, call_client):
    llm = FakeLLM("Still here.")
    call, greeted = await chat_call(start_server, call_client, fake_providers(llm=llm))
    for depth in (17, 8000):  # 8000 levels fit in the 16 KiB a message may have
        sent = time.monotonic()
        call.send_raw("[" * depth + "]" * depth)
        _, error = await call.wait_for(is_("error", code="bad_message"), 5, sent)
        assert "nested too deeply" in error["message"]
    sent = time.monotonic()
    call.send({"type": "text", "text": "are you still there?"})
    _, said = await call.wait_for(is_("transcript", role="assistant"), 10, sent)
    assert said["text"] == "Still here."


async def test_a_message_the_server_fails_on_is_an_error_event_and_the_channel_lives(
    start_server, call_client, started_apps
):
    call, greeted = await chat_call(start_server, call_client, fake_providers(llm=FakeLLM("Still here.")))
    server_call = started_apps[-1][CALLS][call.session_id]
    answer_text = server_call.turn_taker.answer_text

    def broken(text: str) -> None:
        raise RuntimeError("a bug in acting on typed text")

    server_call.turn_taker.answer_text = broken
    call.send({"type": "text", "text": "hello?"})
    _, error = await call.wait_for(is_("error", code="internal"), 5, greeted)
    assert "could not act" in error["message"]
    server_call.turn_taker.answer_text = answer_text
    sent = time.monotonic()
    call.send({"type": "text", "text": "and now?"})
    _, said = await call.wait_for(is_("transcript", role="assistant"), 10, sent)
    assert said["text"] == "Still here."
