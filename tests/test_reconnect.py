"""A call that outlives its connection (server/reconnect.py), over real aiortc peers: the client drops its
connection mid-interview and comes back on a new one; the same call goes on (same session, same next question,
one scorecard for both halves); another client cannot take it; past the grace period it has ended. One that hangs
up is freed at once."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from parley.rtc import CallClient
from server.app import CALLS
from server.config import Settings
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import is_
from tests.interview_script import answer, question_at_end, read_reply

FEEDBACK = "You covered every point clearly."


async def typed(call: CallClient, text: str, after: float) -> tuple[float, str]:
    call.send({"type": "text", "text": text})
    user_t, _ = await call.wait_for(is_("transcript", role="user", text=text), 10, after)
    t, said = await call.wait_for(is_("transcript", role="assistant", interrupted=False), 20, user_t)
    return t, said["text"]


async def status_calls(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
        return (await response.json())["calls"]


async def test_an_interview_goes_on_after_its_connection_is_replaced(start_server, call_client, started_apps):
    url = await start_server(fake_providers(llm=FakeLLM(FEEDBACK, FEEDBACK)), Settings(ice_loopback=True))
    call = await call_client(url, mode="interview")
    t = await call.wait_listening()
    _, greeting = call.find(is_("transcript", role="assistant"))
    first = question_at_end(greeting["text"])
    assert first is not None and call.reconnect_secret
    t, text = await typed(call, answer(first, "correct")[0], t)
    second = read_reply(text).question
    assert second is not None and second != first

    session = call.session_id
    await call.reconnect()  # the old connection is dropped; the server keeps the call and its slot
    _, ready = call.events[-1] if call.events[-1][1]["type"] == "ready" else call.find(is_("ready"), t)
    assert ready["session_id"] == session and call.session_id == session
    assert len(started_apps[-1][CALLS]) == 1

    # The question asked before the drop is the one the next answer is judged against.
    t, text = await typed(call, answer(second, "correct")[0], t)
    assert read_reply(text).question not in (None, first, second)
    card = await call.end()
    assert card is not None
    assert [q["question"] for q in card["questions"][:2]] == [first.text, second.text]
    assert [q["verdict"] for q in card["questions"][:2]] == ["correct", "correct"]


async def test_another_client_cannot_take_a_call_over(start_server, call_client):
    url = await start_server(fake_providers(), Settings(ice_loopback=True))
    call = await call_client(url, mode="chat")
    await call.wait_listening()
    thief = CallClient(url)
    thief.session_id, thief.reconnect_secret = call.session_id, "not-the-secret"
    try:
        with pytest.raises(RuntimeError, match=r"\(403\): that call belongs to another client"):
            await thief.reconnect(timeout=5)
        thief.session_id = "no-such-call"
        with pytest.raises(RuntimeError, match=r"\(404\)"):
            await thief.reconnect(timeout=5)
    finally:
        await thief.close()
    # The owner's call is untouched.
    asked = call.events[-1][0]
    call.send({"type": "text", "text": "still there?"})
    await call.wait_for(is_("transcript", role="assistant"), 10, asked)


async def test_a_call_whose_client_does_not_come_back_ends_after_the_grace_period(start_server, call_client):
    url = await start_server(fake_providers(), Settings(ice_loopback=True, reconnect_s=1.5, peer_timeout_s=1.0))
    call = await call_client(url, mode="chat")
    await call.wait_listening()
    await call.pc.close()  # gone, without a word
    await asyncio.sleep(1.0)
    assert await status_calls(url) == 1  # waiting for it, its slot kept
    for _ in range(50):
        if await status_calls(url) == 0:
            break
        await asyncio.sleep(0.2)
    assert await status_calls(url) == 0
    with pytest.raises(RuntimeError, match=r"\(404\)"):
        await call.reconnect(timeout=5)


async def test_a_client_that_hangs_up_frees_its_call_at_once(start_server, call_client):
    url = await start_server(fake_providers(), Settings(ice_loopback=True))  # a dropped line is kept 30 s
    call = await call_client(url, mode="chat")
    await call.wait_listening()
    await call.close()  # hangs up (tells the server), without waiting for anything
    for _ in range(20):
        if await status_calls(url) == 0:
            break
        await asyncio.sleep(0.1)
    assert await status_calls(url) == 0  # its slot is free for the next caller, not held for a reconnection
