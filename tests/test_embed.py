"""The embedding example (examples/embed/): an app's backend mints a call token with Parley's API key, and its
page, served from the app's own origin, places a real call with it. The token opens that call only, within its
scope; the API key never reaches the page."""

from __future__ import annotations

import time

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.serverproc import free_port
from examples.embed.backend import make_app
from parley.rtc import CallClient, fetch_ice_servers
from server.app import CALLS
from server.config import Settings
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import is_

API_KEY = "the-app-backend-api-key"
SIGNING_KEY = "a-signing-key-of-at-least-32-bytes"


async def test_a_page_of_another_origin_places_one_call_with_a_minted_token(start_server, started_apps):
    port = free_port()
    origin = f"http://127.0.0.1:{port}"  # the app's origin: another port is another origin
    settings = Settings(ice_loopback=True, hangover_ms=500, signing_keys=SIGNING_KEY, api_keys=API_KEY,
                        cors_origins=origin)  # fmt: skip
    parley = await start_server(fake_providers(llm=FakeLLM("Embedded and well.")), settings)
    backend = TestServer(make_app(parley, API_KEY), host="127.0.0.1", port=port)
    await backend.start_server()
    calls: list[CallClient] = []
    try:
        async with aiohttp.ClientSession(headers={"Origin": origin}) as browser:
            async with browser.get(f"{origin}/") as page:
                assert page.status == 200
                html = await page.text()  # the <parley-call> element, from Parley, with the app's token endpoint
                assert f'src="{parley}/static/parley-call.js"' in html and 'token-url="/call-token"' in html
                assert API_KEY not in html
            async with browser.post(f"{origin}/call-token") as resp:
                minted = await resp.json()
            assert resp.status == 200 and minted["parley"] == parley and minted["expires_at"] > time.time()
            token = minted["token"]
            preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
            async with browser.options(f"{parley}/offer", headers=preflight) as resp:
                assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == origin
                assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
            async with browser.get(f"{parley}/ice", headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == origin

        ice = await fetch_ice_servers(parley, token, {"Origin": origin})
        call = CallClient(parley, mode="chat", token=token, ice_servers=ice, headers={"Origin": origin})
        calls.append(call)
        await call.connect()
        greeted = await call.wait_listening()
        call.send({"type": "text", "text": "can you hear me?"})
        await call.wait_for(is_("transcript", role="assistant", text="Embedded and well."), 10, greeted)
        (server_call,) = started_apps[-1][CALLS].values()
        assert server_call.user == "demo-user-42"  # the app's id of the person, kept with the call

        # The app allowed chat and language practice: an interview is refused, and the call goes on.
        asked = time.monotonic()
        call.send({"type": "mode", "mode": "interview"})
        _, refused = await call.wait_for(is_("error", code="not_allowed"), 5, asked)
        assert "does not allow mode 'interview'" in refused["message"]
        call.send({"type": "mode", "mode": "language", "language": "fr"})
        await call.wait_for(is_("ready", mode="language", language="fr"), 5, asked)

        again = CallClient(parley, mode="chat", token=token, headers={"Origin": origin})
        calls.append(again)
        with pytest.raises(RuntimeError, match=r"\(401\).*already used"):
            await again.connect()
        assert len(started_apps[-1][CALLS]) == 1
    finally:
        for each in calls:
            await each.close()
        await backend.close()
