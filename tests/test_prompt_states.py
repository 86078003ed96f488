"""Openings read once (server/providers/local/prompt_states.py): the embedded chat model loads the kept state of a
mode's opening rather than reading it again, answers exactly as if it had read it, and the server has every mode's
opening in the default language read before it says it is ready (the default mode's last)."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import pytest

from server.config import Settings
from server.dialogue.modes import DEFAULT_MODE, PERSONAS
from server.dialogue.responder import opening_messages
from server.languages import DEFAULT_LANGUAGE
from server.providers.base import ChatMessage, Providers

pytestmark = pytest.mark.real_models

QUESTION: ChatMessage = {"role": "user", "content": "What is a hash map?"}


async def greedy_reply(providers: Providers, messages: Sequence[ChatMessage]) -> str:
    return "".join([d async for d in providers.llm.stream(messages, temperature=0.0, max_tokens=24)])


async def test_an_opening_read_before_is_loaded_and_answered_as_if_read_again(real_providers):
    llm = real_providers.llm
    interview = opening_messages("interview", "en", Settings(), real_providers)
    spanish_chat = opening_messages("chat", "es", Settings(), real_providers)
    await llm.warm(interview, opening=True)
    read = await greedy_reply(real_providers, [*interview, QUESTION])
    await llm.warm(spanish_chat, opening=True)  # another call takes the cache
    loads = llm._states.loads
    loaded = await greedy_reply(real_providers, [*interview, QUESTION])
    assert llm._states.loads == loads + 1
    assert loaded == read and loaded


async def test_the_server_is_ready_with_every_modes_opening_read(start_server, real_providers):
    llm = real_providers.llm
    await llm.warm(opening_messages("chat", "fr", Settings(), real_providers), opening=True)  # not a default
    url = await start_server(real_providers, Settings(ice_loopback=True))
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
        assert response.status == 200
    default = opening_messages(DEFAULT_MODE, DEFAULT_LANGUAGE, Settings(), real_providers)
    assert llm.cached_text().endswith(default[-1]["content"] + "<|im_end|>\n<|im_start|>user\n")  # read last
    loads = llm._states.loads
    others = [mode for mode in PERSONAS if mode != DEFAULT_MODE]
    for mode in [*others, DEFAULT_MODE]:  # each is loaded, none read again
        await llm.warm(opening_messages(mode, DEFAULT_LANGUAGE, Settings(), real_providers), opening=True)
    assert llm._states.loads == loads + len(PERSONAS)
