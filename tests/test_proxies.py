"""PARLEY_TRUSTED_PROXIES: forwarding headers are believed from trusted proxies only. Through one, the per-address
limits count the real callers and an https page passes the same-origin check; from anyone else, a spoofed
X-Forwarded-For changes nothing."""

from __future__ import annotations

import asyncio

import pytest

from server.app import MODELS, create_app
from server.config import Settings
from server.proxies import parse_trusted, real_client
from tests.fakes import fake_providers
from tests.helpers import client_offer

LOCAL = parse_trusted("127.0.0.1")


def test_the_caller_is_the_rightmost_address_not_itself_trusted():
    proxies = parse_trusted("127.0.0.1, 10.0.0.0/8")
    assert real_client("127.0.0.1", ["203.0.113.7"], proxies) == "203.0.113.7"
    assert real_client("127.0.0.1", ["198.51.100.1, 203.0.113.7, 10.0.0.3"], proxies) == "203.0.113.7"  # spoofed left
    assert real_client("127.0.0.1", ["198.51.100.1", "203.0.113.7"], proxies) == "203.0.113.7"  # two header lines
    assert real_client("127.0.0.1", [], proxies) == "127.0.0.1"  # the proxy's own request
    assert real_client("127.0.0.1", ["not-an-address, 10.0.0.3"], proxies) == "10.0.0.3"
    assert real_client("::ffff:127.0.0.1", ["2001:db8::1"], proxies) == "2001:db8::1"
    assert real_client("192.0.2.9", ["203.0.113.7"], proxies) is None  # an untrusted peer: nothing is believed


def test_a_bad_trusted_proxy_is_a_clear_start_up_error():
    with pytest.raises(ValueError, match="PARLEY_TRUSTED_PROXIES"):
        Settings.from_env({"PARLEY_TRUSTED_PROXIES": "127.0.0.1, proxy.example.com"})


async def started(aiohttp_client, **settings):
    app = create_app(Settings(ice_loopback=True, **settings), lambda _s: fake_providers())
    client = await aiohttp_client(app)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    return client


async def offer(client, sdp: str, **headers) -> tuple[int, str]:
    resp = await client.post("/offer", json={"sdp": sdp, "type": "offer"}, headers=headers)
    return resp.status, (await resp.json()).get("error", "")


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(aiohttp_client):
    sdp = await client_offer()
    client = await started(aiohttp_client, trusted_proxies="10.9.9.9", offers_per_minute=2, max_calls=1)
    statuses = [(await offer(client, sdp, **{"X-Forwarded-For": f"203.0.113.{i}"}))[0] for i in range(3)]
    assert statuses[2] == 429  # all three counted against the peer, 127.0.0.1
    capped = await started(aiohttp_client, calls_per_address=1, max_calls=5)  # no trusted proxy at all
    assert (await offer(capped, sdp, **{"X-Forwarded-For": "203.0.113.1"}))[0] == 200
    status, error = await offer(capped, sdp, **{"X-Forwarded-For": "203.0.113.2"})
    assert status == 429 and "calls open" in error


async def test_through_a_trusted_proxy_each_caller_has_its_own_limits(aiohttp_client):
    """Two callers behind the proxy get 20 offers a minute each (the default), 21 of them all admitted past the
    rate limit: a node of capacity 1 answers the first and refuses the rest for capacity, not for the rate."""
    sdp = await client_offer()
    client = await started(aiohttp_client, trusted_proxies="127.0.0.1", max_calls=1, calls_per_address=0)
    a, b = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "198.51.100.2, 203.0.113.2"}
    statuses = [(await offer(client, sdp, **(a if i % 2 else b)))[0] for i in range(40)]
    assert 429 not in statuses and statuses.count(200) == 1
    assert (await offer(client, sdp, **a))[0] == 429  # the 21st from one caller in the minute
    capped = await started(aiohttp_client, trusted_proxies="127.0.0.0/8", calls_per_address=1, max_calls=5)
    assert (await offer(capped, sdp, **a))[0] == 200
    assert (await offer(capped, sdp, **a))[0] == 429  # that caller's one call is open
    assert (await offer(capped, sdp, **b))[0] == 200  # another caller behind the same proxy is not


async def test_an_https_page_through_a_trusted_tls_proxy_is_same_origin(aiohttp_client):
    sdp = await client_offer()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.1"}
    plain = await started(aiohttp_client, max_calls=5)
    origin = f"https://{plain.server.host}:{plain.server.port}"
    assert (await offer(plain, sdp, Origin=origin, **https))[0] == 403  # not trusted: the scheme is http
    proxied = await started(aiohttp_client, trusted_proxies="127.0.0.1", max_calls=5)
    origin = f"https://{proxied.server.host}:{proxied.server.port}"
    assert (await offer(proxied, sdp, Origin=origin, **https))[0] == 200
    public = {**https, "X-Forwarded-Host": "parley.example.com"}
    assert (await offer(proxied, sdp, Origin="https://parley.example.com", **public))[0] == 200
    assert (await offer(proxied, sdp, Origin="https://evil.example.net", **public))[0] == 403
