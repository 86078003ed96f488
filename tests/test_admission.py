"""Who gets a call: capacity, rate limit, token; and calls that end themselves (idle, too long)."""

from __future__ import annotations

import asyncio
import time

import pytest

from server import ice
from server.admission import OfferRateLimiter
from server.app import CALLS, METRICS, MODELS, create_app
from server.config import Settings
from tests.fakes import fake_providers
from tests.helpers import client_offer, until


async def started(aiohttp_client, settings: Settings):
    app = create_app(settings, lambda _s: fake_providers())
    client = await aiohttp_client(app)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    return app, client


async def offer(client, **headers):
    return await client.post("/offer", json={"sdp": await client_offer(), "type": "offer"}, headers=headers)


async def test_capacity_is_a_503_and_comes_back_when_a_call_ends(aiohttp_client):
    app, client = await started(aiohttp_client, Settings(ice_loopback=True, max_calls=1))
    first = await offer(client)
    assert first.status == 200
    full = await offer(client)
    assert full.status == 503 and "capacity" in (await full.json())["error"]
    status = await (await client.get("/status")).json()
    assert status["active_calls"] == 1 and status["capacity"] == 1
    await app[CALLS][(await first.json())["session_id"]].close()
    assert (await offer(client)).status == 200


async def test_a_burst_of_offers_admits_exactly_the_capacity(aiohttp_client):
    """20 offers at once from real peers to a node of capacity 2: 2 calls, 18 JSON 503s; once the calls end, the
    slots are free again (for /status, /metrics and the next offers)."""
    unlimited = {"offers_per_minute": 0, "calls_per_address": 0}
    app, client = await started(aiohttp_client, Settings(ice_loopback=True, max_calls=2, **unlimited))
    sdps = await asyncio.gather(*(client_offer() for _ in range(20)))
    answers = await asyncio.gather(*(client.post("/offer", json={"sdp": sdp, "type": "offer"}) for sdp in sdps))
    statuses = [a.status for a in answers]
    assert sorted(statuses) == [200] * 2 + [503] * 18, statuses
    refused = [await a.json() for a in answers if a.status == 503]
    assert all(body == {"error": "the server is at capacity; try again shortly"} for body in refused)
    assert len(app[CALLS]) == 2
    status = await (await client.get("/status")).json()
    assert status["free_slots"] == 0 and status["capacity"] == 2 and status["active_calls"] == 2
    assert "parley_call_slots_busy 2.0" in (await (await client.get("/metrics")).text())
    for call in list(app[CALLS].values()):
        await call.close()
    status = await (await client.get("/status")).json()
    assert status["free_slots"] == 2 and status["active_calls"] == 0
    text = await (await client.get("/metrics")).text()
    assert "parley_call_slots_busy 0.0" in text and "parley_call_slots 2.0" in text
    assert (await client.post("/offer", json={"sdp": "not sdp", "type": "offer"})).status == 400
    assert (await (await client.get("/status")).json())["free_slots"] == 2  # a refused offer gave its slot back
    assert [(await offer(client)).status for _ in range(3)] == [200, 200, 503]


async def test_no_offer_rate_limit_when_it_is_0(aiohttp_client):
    """PARLEY_OFFERS_PER_MINUTE=0: the balancer in front limits offers per caller; the node does not."""
    settings = Settings(ice_loopback=True, offers_per_minute=0, calls_per_address=0, max_calls=30)
    _, client = await started(aiohttp_client, settings)
    assert {(await offer(client)).status for _ in range(22)} == {200}
    assert OfferRateLimiter(per_minute=0).allow("a")


async def test_too_many_offers_from_one_address_get_a_429(aiohttp_client):
    _, client = await started(aiohttp_client, Settings(ice_loopback=True, offers_per_minute=2, max_calls=10))
    assert [(await offer(client)).status for _ in range(3)] == [200, 200, 429]


def test_the_rate_limit_window_slides():
    limiter = OfferRateLimiter(per_minute=2)
    assert [limiter.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", 2) and limiter.allow("a", 61)


async def test_a_token_is_required_when_configured(aiohttp_client):
    _, client = await started(aiohttp_client, Settings(ice_loopback=True, token="s3cret", max_calls=5))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        resp = await offer(client, **headers)
        assert resp.status == 401 and "token" in (await resp.json())["error"]
    assert (await offer(client, Authorization="Bearer s3cret")).status == 200


@pytest.mark.parametrize(("limits", "reason"), [({"idle_s": 1.0}, "idle"), ({"max_call_s": 1.5}, "max_duration")])
async def test_a_call_ends_itself_with_an_event_first(start_server, call_client, started_apps, limits, reason):
    url = await start_server(fake_providers(), Settings(ice_loopback=True, hangover_ms=500, **limits))
    call = await call_client(url, mode="chat")
    _, ended = await call.wait_for(lambda e: e["type"] == "ended", 10)
    assert ended["reason"] == reason
    for _ in range(50):
        if not started_apps[-1][CALLS]:
            break
        await asyncio.sleep(0.1)
    assert started_apps[-1][CALLS] == {}


async def test_ice_servers_reach_the_server_and_the_page(aiohttp_client):
    servers = '[{"urls": ["stun:127.0.0.1:3478"]}]'
    turn = {"turn_secret": "s", "turn_urls": "turn:127.0.0.1:3478"}
    _, client = await started(aiohttp_client, Settings(ice_loopback=True, ice_servers=servers, **turn))
    body = await (await client.get("/ice")).json()
    assert body["iceServers"][0] == {"urls": ["stun:127.0.0.1:3478"]}
    assert body["iceServers"][1]["urls"] == ["turn:127.0.0.1:3478"] and body["iceServers"][1]["credential"]
    config = ice.configuration(ice.parse_servers(servers))
    assert [s.urls for s in config.iceServers] == [["stun:127.0.0.1:3478"]]


@pytest.mark.parametrize(
    "raw", ["not json", '{"urls": "stun:x"}', '[{"username": "u"}]', '[{"urls": "turn:x", "credential": "p"}]']
)
def test_bad_ice_servers_are_a_clear_start_up_error(raw):
    with pytest.raises(ValueError, match="PARLEY_ICE_SERVERS"):
        Settings.from_env({"PARLEY_ICE_SERVERS": raw})


async def test_the_page_forbids_anything_from_elsewhere(aiohttp_client):
    _, client = await started(aiohttp_client, Settings(ice_loopback=True))
    page = await client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "http" not in (await page.text()).replace('"/static', "")  # no third-party URL in the page
    # The same page by its file's own URL, and any other page under /static/, is under the same policy; scripts are not.
    for path in ("/static/index.html", "/static/parley.js"):
        other = await client.get(path)
        policy = other.headers.get("Content-Security-Policy")
        assert other.status == 200 and policy == (csp if path.endswith(".html") else None)


async def test_a_stalled_event_loop_is_noticed(aiohttp_client, caplog):
    app, _ = await started(aiohttp_client, Settings(ice_loopback=True))
    await asyncio.sleep(0.1)
    time.sleep(0.3)  # block the loop, as blocking inference on it would  # noqa: ASYNC251
    await until(lambda: "event loop stalled" in caplog.text)
    assert "parley_event_loop_stalls_total 1.0" in app[METRICS].render().decode()


async def test_shutdown_tells_every_call_then_hangs_up(start_server, call_client, started_apps):
    url = await start_server(fake_providers(), Settings(ice_loopback=True, hangover_ms=500))
    call = await call_client(url, mode="chat")
    app = started_apps[-1]
    await app.shutdown()  # what SIGTERM runs
    _, ended = await call.wait_for(lambda e: e["type"] == "ended", 5)
    assert ended["reason"] == "shutdown" and app[CALLS] == {}


async def test_other_origins_need_to_be_allowed(aiohttp_client):
    allowed = "https://app.example.com"
    app, client = await started(aiohttp_client, Settings(ice_loopback=True, cors_origins=allowed, max_calls=5))
    own = f"http://{client.server.host}:{client.server.port}"
    assert (await offer(client, Origin=own)).status == 200  # same origin: no setting needed
    refused = await offer(client, Origin="https://evil.example.net")
    assert refused.status == 403 and "not allowed" in (await refused.json())["error"]
    assert len(app[CALLS]) == 1  # no peer connection was made for the refused origin
    preflight = await client.options("/offer", headers={"Origin": allowed, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204 and preflight.headers["Access-Control-Allow-Origin"] == allowed
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    answered = await offer(client, Origin=allowed)
    assert answered.status == 200 and answered.headers["Access-Control-Allow-Origin"] == allowed


async def test_a_peer_that_vanishes_is_hung_up(start_server, call_client, started_apps):
    # (after the grace period in which it could have come back: test_reconnect.py)
    settings = Settings(ice_loopback=True, hangover_ms=500, peer_timeout_s=1.0, reconnect_s=1.0)
    url = await start_server(fake_providers(), settings)
    call = await call_client(url, mode="chat")
    calls = started_apps[-1][CALLS]
    assert len(calls) == 1
    call.mic.stop()  # its audio stops, and it never hangs up
    for _ in range(60):
        if not calls:
            break
        await asyncio.sleep(0.1)
    assert calls == {}
