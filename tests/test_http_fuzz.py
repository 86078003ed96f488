"""HTTP-level fuzzing of the running app (hypothesis): any method, path, headers and body. The server answers
every request without a 500, every refusal is JSON saying what is wrong, and a real call works afterwards."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from parley.rtc import CallClient
from server.app import CALLS, MODELS, STATIC, create_app
from server.config import Settings
from server.sdp_guard import address_kind
from server.serving import HANDLER_ARGS
from tests.fakes import fake_providers
from tests.helpers import client_offer, until
from tests.strategies import json_values, messages, mutated_sdps, nested_json

TOKEN = "fuzz-token"
ROUTES = ["/", "/offer", "/healthz", "/status", "/ice", "/languages", "/metrics", "/static/app.js", "/static/", "/nope"]
TRICKY_PATHS = ["/static/../server/app.py", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static//etc/passwd",
                "/offer/", "//offer", "/offer?x=1", "/%00", "/static/app.js%00.html", "/" + "a" * 3000]  # fmt: skip
STATIC_FILES = {p.read_bytes() for p in STATIC.iterdir()}
BIG = b"<70 KiB>"  # stands for a body over the 64 KiB cap (so hypothesis does not print it)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
path_text = st.text(st.sampled_from("abcz019/._-~%?&=+:@!$'()*,;"), max_size=40).map(lambda p: "/" + p)


def offer_bodies(sdp: str) -> st.SearchStrategy[bytes]:
    """Mostly offers that are almost right (the real SDP, fuzzed fields), some anything at all."""
    near = st.fixed_dictionaries(
        {"sdp": st.sampled_from([sdp, sdp[:200], sdp.replace("sendrecv", "recvonly"), "v=0\r\n"]) | json_values,
         "type": st.sampled_from(["offer", "answer"]) | json_values},
        optional={"mode": st.sampled_from(["chat", "interview", "x"]) | json_values,
                  "language": st.sampled_from(["en", "fr", "xx"]) | json_values},
    )  # fmt: skip
    return st.one_of(
        near.map(lambda d: json.dumps(d).encode()),
        messages.map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=400),
        st.text(max_size=200).map(str.encode),
        nested_json.map(str.encode),  # was a 500 past the interpreter's recursion limit
        st.just(BIG),
    )


def requests(sdp: str) -> st.SearchStrategy[tuple[str, str, dict[str, str], bytes]]:
    method = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    path = st.sampled_from(ROUTES) | st.sampled_from(TRICKY_PATHS) | path_text
    content_type = st.sampled_from(["application/json", "text/plain", "multipart/form-data; boundary=x",
                                    "application/json; charset=latin-1"]) | header_text  # fmt: skip
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": content_type,
            "Authorization": st.sampled_from([f"Bearer {TOKEN}", "Bearer", "Basic Zm9vOmJhcg==", TOKEN]) | header_text,
            "Origin": st.sampled_from(["https://evil.example.net", "null"]) | header_text,
            "Content-Encoding": st.sampled_from(["gzip", "br", "deflate", "zstd", "identity"]) | header_text,
            "Accept": header_text,
        },
    )  # fmt: skip
    # Offers mostly go to /offer with the token, so the fuzz reaches the offer's own checks.
    offer_headers = st.fixed_dictionaries({"Authorization": st.just(f"Bearer {TOKEN}")},
                                          optional={"Content-Type": content_type})  # fmt: skip
    offer = st.tuples(st.just("POST"), st.just("/offer"), offer_headers, offer_bodies(sdp))
    return offer | st.tuples(method, path, headers, offer_bodies(sdp) | st.just(b""))


async def check(client: TestClient, request: tuple[str, str, dict[str, str], bytes]) -> None:
    method, path, headers, body = request
    body = b"x" * (70 * 1024) if body == BIG else body
    url = URL(f"http://{client.host}:{client.port}{path}", encoded=True)  # the path goes out exactly as written
    async with client.session.request(method, url, headers=headers, data=body, allow_redirects=False) as resp:
        raw = await resp.read()
        assert resp.status != 500 and (resp.status < 500 or resp.status == 503), (request, resp.status, raw[:200])
        if resp.status == 200 and method == "GET" and "static" in path:  # nothing from outside the page's folder
            assert raw in STATIC_FILES, path
        if resp.status >= 400 and method != "HEAD":
            error = json.loads(raw)["error"]  # every refusal says what is wrong, in JSON
            assert isinstance(error, str) and error


async def started(app) -> TestClient:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(**HANDLER_ARGS)  # as python -m server runs it
    return TestClient(server)


def test_any_http_request_gets_an_answer_and_calls_still_work() -> None:
    loop = asyncio.new_event_loop()
    config = Settings(ice_loopback=True, token=TOKEN, max_calls=10_000, offers_per_minute=1_000_000, hangover_ms=500,
                      calls_per_address=0)  # fmt: skip
    app = create_app(config, lambda _s: fake_providers())
    client = loop.run_until_complete(started(app))
    try:
        loop.run_until_complete(asyncio.wait_for(app[MODELS].loaded.wait(), 30))
        sdp = loop.run_until_complete(client_offer())

        @settings(max_examples=500, deadline=None, derandomize=True,  # the same cases on every run: CI repeats
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(requests(sdp))
        def fuzz(request: tuple[str, str, dict[str, str], bytes]) -> None:
            loop.run_until_complete(check(client, request))

        fuzz()
        loop.run_until_complete(after_the_fuzz(app, str(client.make_url("")).rstrip("/")))
    finally:
        loop.run_until_complete(client.close())
        leftovers = asyncio.all_tasks(loop)  # e.g. peer connections of fuzzed offers still closing
        for task in leftovers:
            task.cancel()
        if leftovers:  # (gather() of nothing would belong to no loop of this test)
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()


async def after_the_fuzz(app, url: str) -> None:
    """The offers the fuzz got answered hang up; then a real call is placed and answered."""
    await asyncio.gather(*(call.close() for call in list(app[CALLS].values())))
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
        assert resp.status == 200
    call = CallClient(url, mode="chat", token=TOKEN)
    try:
        await call.connect()
        await call.wait_listening(30)
        call.send({"type": "text", "text": "still there?"})
        _, reply = await call.wait_for(lambda e: e["type"] == "transcript" and e["role"] == "assistant", 30)
        assert reply["text"]
    finally:
        await call.close()


def test_any_offer_sdp_is_answered_or_refused_and_no_forbidden_candidate_is_checked() -> None:
    """Offers whose SDP has extra sections, candidates and attributes (tests/strategies.py): a 200 or a 400 in
    words, never a 500; an answered call's ICE holds no remote candidate the server must not check (loopback
    mode: loopback only); and the calls, none of which ever connects, free their slots by themselves."""
    loop = asyncio.new_event_loop()
    config = Settings(
        ice_loopback=True,
        token=TOKEN,
        max_calls=10_000,
        offers_per_minute=1_000_000,
        calls_per_address=0,
        hangover_ms=500,
    )
    app = create_app(config, lambda _s: fake_providers())
    client = loop.run_until_complete(started(app))
    answered: list[int] = []
    try:
        loop.run_until_complete(asyncio.wait_for(app[MODELS].loaded.wait(), 30))
        sdp = loop.run_until_complete(client_offer(channel=True))

        @settings(max_examples=150, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(mutated_sdps(sdp))
        def fuzz(offer_sdp: str) -> None:
            answered.append(loop.run_until_complete(check_offer(client, app, offer_sdp)))

        fuzz()
        assert sum(answered) > 20  # the fuzz reached aiortc, not only the refusals
        loop.run_until_complete(until(lambda: not app[CALLS], config.connect_timeout_s + 5))
        loop.run_until_complete(after_the_fuzz(app, str(client.make_url("")).rstrip("/")))
    finally:
        loop.run_until_complete(client.close())
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:  # (gather() of nothing would belong to no loop of this test)
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()


async def check_offer(client: TestClient, app, sdp: str) -> int:
    """1 when the offer was answered, 0 when it was refused in words."""
    body = {"sdp": sdp, "type": "offer"}
    async with client.post("/offer", json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        answer = await resp.json()
        assert resp.status in (200, 400), (resp.status, answer, sdp)
    if resp.status == 400:
        assert isinstance(answer["error"], str) and answer["error"]
        return 0
    call = app[CALLS].get(answer["session_id"])
    if call is None or call.closed.is_set():  # ICE already failed (no candidate left): nothing to look at
        return 1
    pc = call.pc
    transports = {t.receiver.transport.transport for t in pc.getTransceivers()}
    if pc.sctp is not None:
        transports.add(pc.sctp.transport.transport)
    for ice in transports:
        for candidate in ice.getRemoteCandidates():
            assert address_kind(candidate.ip) in (None, "loopback"), (candidate, sdp)
    return 1
