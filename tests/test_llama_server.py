"""The chat stage through the OpenAI provider to a real OpenAI-compatible server this project did not write:
llama-cpp-python's own server, serving the embedded GGUF on loopback."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from server.config import Settings
from server.providers.base import Providers
from server.providers.openai_compat import Endpoint, OpenAIChat
from tests.fakes import FakeSTT, FakeTTS
from tests.llama_replica import Replica

pytestmark = pytest.mark.real_models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def llama_server():
    replica = Replica(free_port(), "qwen-coder-1.5b", threads=2)
    try:
        async with aiohttp.ClientSession() as http:
            await replica.ready(http)
        yield replica.url
    finally:
        replica.stop()


async def test_a_call_whose_chat_runs_on_llama_cpp_server_answers(llama_server, start_server, call_client):
    chat = OpenAIChat(Endpoint(model="qwen-coder-1.5b", base_url=llama_server, timeout_s=60))
    url = await start_server(
        Providers(stt=FakeSTT(), llm=chat, tts=FakeTTS()), Settings(ice_loopback=True, llm="openai")
    )
    call = await call_client(url, mode="chat")
    greeted = await call.wait_listening()
    call.send({"type": "text", "text": "What is the capital city of France? Answer in one short sentence."})
    _, said = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 90, greeted)
    assert "paris" in said["text"].lower(), said["text"]
    assert call.recording.first_loud_after(greeted) is not None
