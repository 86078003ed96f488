"""Call tokens (server/tokens.py): minted with an API key, single use, expiring, scoped; keys that rotate; and
what /tokens, /ice and /offer answer to them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sqlite3
import time

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.app import CALLS, MODELS, create_app
from server.config import Settings
from server.spent_tokens import SpentTokens
from server.tokens import AUDIENCE, CallTokens, Grant, TokenError, parse_keys
from tests.fakes import fake_providers
from tests.helpers import client_offer
from tests.strategies import json_values

KEY = "k" * 32
OLD_KEY = "o" * 32
API_KEY = "backend-api-key"


def tokens(*keys: str) -> CallTokens:
    return CallTokens(parse_keys(",".join(keys or (KEY,))))


def test_a_token_is_used_once():
    issuer = tokens()
    token, _ = issuer.mint({"user": "u-1"})
    grant = issuer.verify(token)
    assert grant.user == "u-1" and grant.modes is None and grant.languages is None
    issuer.verify(token)  # checking it (as /ice does) does not spend it
    issuer.spend(grant)
    with pytest.raises(TokenError, match="already used"):
        issuer.verify(token)
    with pytest.raises(TokenError, match="already used"):
        issuer.spend(grant)


def test_a_token_expires():
    issuer = tokens()
    token, expires_at = issuer.mint({"ttl_s": 30}, now=1_000_000)
    assert expires_at == 1_000_030
    assert issuer.verify(token, now=1_000_029).expires_at == expires_at
    with pytest.raises(TokenError, match="expired") as refused:
        issuer.verify(token, now=1_000_030)
    assert refused.value.status == 401
    with pytest.raises(TokenError, match="expired"):
        issuer.verify(tokens().mint({})[0], now=time.time() + 61)  # the default: 60 s to start the call


def test_forged_and_foreign_tokens_are_refused():
    issuer = tokens()
    token, _ = issuer.mint({})
    with pytest.raises(TokenError, match="signature"):
        tokens("x" * 32).verify(token)
    header, claims, signature = token.split(".")
    widened = jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "modes": None}, "y" * 32)
    with pytest.raises(TokenError, match="signature"):
        issuer.verify(f"{header}.{widened.split('.')[1]}.{signature}")  # claims changed, old signature
    unsigned = jwt.encode(jwt.decode(token, options={"verify_signature": False}), None, algorithm="none")
    with pytest.raises(TokenError, match="not valid"):
        issuer.verify(unsigned)
    other_use = jwt.encode({"aud": "something-else", "exp": int(time.time()) + 60, "iat": 0, "jti": "j"}, KEY)
    with pytest.raises(TokenError, match="not valid"):
        issuer.verify(other_use)
    with pytest.raises(TokenError, match="not valid"):
        issuer.verify("not.a.jwt")


def test_keys_rotate_without_downtime():
    before = tokens(OLD_KEY)
    old_token, _ = before.mint({})
    during = tokens(KEY, OLD_KEY)  # the new key signs, the old one still verifies
    new_token, _ = during.mint({})
    assert during.verify(old_token) and during.verify(new_token)
    after = tokens(KEY)  # the old key dropped once its tokens expired
    assert after.verify(new_token)
    with pytest.raises(TokenError, match="signature"):
        after.verify(old_token)


def test_a_token_pins_or_limits_mode_and_language():
    issuer = tokens()
    pinned = issuer.verify(issuer.mint({"mode": "chat", "language": "fr"})[0])
    assert (pinned.default_mode(), pinned.default_language()) == ("chat", "fr")
    pinned.check("chat", "fr")
    with pytest.raises(TokenError, match="does not allow mode 'interview'") as refused:
        pinned.check("interview", "fr")
    assert refused.value.status == 403
    with pytest.raises(TokenError, match="does not allow language 'en'"):
        pinned.check("chat", "en")
    limited = issuer.verify(issuer.mint({"modes": ["language", "chat"]})[0])
    limited.check("chat", "ja")
    assert limited.default_mode() == "language" and limited.default_language() is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"mode": "karaoke"}, "unknown mode"),
        ({"languages": ["en", "xx"]}, "unknown language"),
        ({"mode": "chat", "modes": ["chat"]}, "not both"),
        ({"modes": []}, "non-empty list"),
        ({"user": ""}, "user"),
        ({"user": "a\nb"}, "user"),
        ({"user": "x" * 129}, "user"),
        ({"ttl_s": 0}, "ttl_s"),
        ({"ttl_s": 601}, "ttl_s"),
        ({"ttl_s": True}, "ttl_s"),
        ({"scope": "admin"}, "unknown field"),
    ],
)
def test_a_bad_mint_request_says_what_is_wrong(body, message):
    with pytest.raises(TokenError, match=message) as refused:
        tokens().mint(body)
    assert refused.value.status == 400


def test_spent_tokens_are_forgotten_once_they_expire():
    issuer = tokens()
    for i in range(100):
        issuer.spend(issuer.verify(issuer.mint({"ttl_s": 600}, now=1000 + i)[0], now=1000 + i), now=1000 + i)
    assert len(issuer._spent) == 100
    issuer.spend(issuer.verify(issuer.mint({}, now=1700)[0], now=1700), now=1700)
    assert len(issuer._spent) == 1  # the memory of spent tokens is bounded by how many are unexpired


_segment = st.text(st.sampled_from("AZaz09-_=+/."), max_size=40)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.builds(lambda a, b, c: f"{a}.{b}.{c}", _segment, _segment, _segment),
        st.builds(
            lambda claims: jwt.encode(claims, KEY),
            st.dictionaries(
                st.sampled_from(["aud", "exp", "iat", "jti", "sub", "modes", "languages"]), json_values, max_size=7
            ),
        ),
    )
)
def test_any_token_is_verified_or_refused_in_words(token):
    """Garbage, and well-signed claims of any shape: a TokenError saying why, never another exception."""
    try:
        tokens().verify(token)
    except TokenError as exc:
        assert exc.status == 401 and str(exc)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PARLEY_SIGNING_KEYS": "short", "PARLEY_API_KEYS": "a"}, "at least 32 bytes"),
        ({"PARLEY_SIGNING_KEYS": KEY}, "PARLEY_API_KEYS"),
        ({"PARLEY_TURN_SECRET": "s"}, "go together"),
        ({"PARLEY_TURN_SECRET": "s", "PARLEY_TURN_URLS": "stun:x:3478"}, "turn:"),
        ({"PARLEY_ICE_SERVERS": '[{"urls": "turn:x", "username": "u", "credential": "p"}]'}, "PARLEY_TURN_SECRET"),
        ({"PARLEY_CALLS_PER_ADDRESS": "-1"}, "PARLEY_CALLS_PER_ADDRESS"),
    ],
)
def test_access_settings_are_checked_at_start_up(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


# -- over HTTP ------------------------------------------------------------------------------------------------
SERVER = Settings(ice_loopback=True, max_calls=10, signing_keys=KEY, api_keys=API_KEY,
                    turn_secret="turn-secret", turn_urls="turn:127.0.0.1:3478")  # fmt: skip


async def started(aiohttp_client, settings: Settings = SERVER):
    app = create_app(settings, lambda _s: fake_providers())
    client = await aiohttp_client(app)
    await asyncio.wait_for(app[MODELS].loaded.wait(), 10)
    return app, client


async def mint(client, body: dict | None = None, key: str = API_KEY) -> str:
    resp = await client.post("/tokens", json=body or {}, headers={"Authorization": f"Bearer {key}"})
    data = await resp.json()
    assert resp.status == 200, data
    assert data["expires_at"] - time.time() == pytest.approx(60, abs=2)
    return data["token"]


async def offer(client, token: str | None = None, **body):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post("/offer", json={"sdp": await client_offer(), "type": "offer", **body}, headers=headers)


async def test_tokens_need_the_api_key(aiohttp_client):
    _, client = await started(aiohttp_client)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        refused = await client.post("/tokens", json={}, headers=headers)
        assert refused.status == 401 and "API key" in (await refused.json())["error"]
    bad = await client.post("/tokens", json={"mode": "karaoke"}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert bad.status == 400 and "unknown mode" in (await bad.json())["error"]
    garbage = await client.post("/tokens", data=b"{", headers={"Authorization": f"Bearer {API_KEY}"})
    assert garbage.status == 400 and "JSON" in (await garbage.json())["error"]
    _, plain = await started(aiohttp_client, Settings(ice_loopback=True))
    off = await plain.post("/tokens", json={}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert off.status == 404 and "PARLEY_SIGNING_KEYS" in (await off.json())["error"]


async def test_a_call_token_places_one_call(aiohttp_client):
    app, client = await started(aiohttp_client)
    token = await mint(client, {"mode": "chat", "language": "fr", "user": "u-42"})
    ice = await client.get("/ice", headers={"Authorization": f"Bearer {token}"})
    assert ice.status == 200
    placed = await offer(client, token)  # no mode or language in the offer: the token's
    assert placed.status == 200, await placed.json()
    call = app[CALLS][(await placed.json())["session_id"]]
    assert (call.responder.mode, call.responder.language, call.user) == ("chat", "fr", "u-42")
    again = await offer(client, token, mode="chat", language="fr")
    assert again.status == 401 and "already used" in (await again.json())["error"]
    ice_again = await client.get("/ice", headers={"Authorization": f"Bearer {token}"})
    assert ice_again.status == 401 and "already used" in (await ice_again.json())["error"]


async def test_refused_tokens_get_clear_errors(aiohttp_client):
    app, client = await started(aiohttp_client)
    scoped = await mint(client, {"mode": "chat"})
    wrong_scope = await offer(client, scoped, mode="interview")
    assert wrong_scope.status == 403 and "does not allow mode 'interview'" in (await wrong_scope.json())["error"]
    assert (await offer(client, scoped, mode="chat")).status == 200  # refused for its scope, not spent
    forged = jwt.encode({"aud": AUDIENCE, "iat": 0, "exp": int(time.time()) + 60, "jti": "x"}, "f" * 32)
    expired = jwt.encode({"aud": AUDIENCE, "iat": 0, "exp": int(time.time()) - 1, "jti": "y"}, KEY)
    for token, message in ((None, "required"), ("junk", "wrong"), (forged, "signature"), (expired, "expired")):
        resp = await offer(client, token)
        assert resp.status == 401 and message in (await resp.json())["error"], (token, await resp.json())
        ice = await client.get("/ice", headers={"Authorization": f"Bearer {token}"} if token else {})
        assert ice.status == 401 and message in (await ice.json())["error"]
    assert len(app[CALLS]) == 1


async def test_ice_hands_out_turn_credentials_that_expire(aiohttp_client):
    _, client = await started(aiohttp_client)
    token = await mint(client, {"user": "person@example.com"})
    first = await (await client.get("/ice", headers={"Authorization": f"Bearer {token}"})).json()
    (turn,) = first["iceServers"]
    expiry, name = turn["username"].split(":")
    assert int(expiry) - time.time() == pytest.approx(300, abs=2)
    assert "person" not in name  # STUN sends usernames in clear: not the app's user id
    expected = base64.b64encode(hmac.new(b"turn-secret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn == {"urls": ["turn:127.0.0.1:3478"], "username": turn["username"], "credential": expected}


async def test_the_static_token_still_opens_calls_and_mints(aiohttp_client):
    settings = Settings(ice_loopback=True, max_calls=10, token="s3cret", signing_keys=KEY)
    _, client = await started(aiohttp_client, settings)
    assert (await client.get("/ice")).status == 401
    assert (await client.get("/ice", headers={"Authorization": "Bearer s3cret"})).status == 200
    assert (await offer(client, "s3cret")).status == 200
    assert (await offer(client, "s3cret")).status == 200  # the static token is not single-use
    token = await mint(client, key="s3cret")  # a single person's server: the token mints too
    assert (await offer(client, token)).status == 200


async def test_calls_per_address_are_capped_and_freed_when_one_ends(aiohttp_client):
    app, client = await started(aiohttp_client, Settings(ice_loopback=True, max_calls=10, calls_per_address=2))
    first, second = await offer(client), await offer(client)
    assert first.status == second.status == 200
    third = await offer(client)
    assert third.status == 429 and "2 calls open" in (await third.json())["error"]
    await app[CALLS][(await first.json())["session_id"]].close()
    bad = await client.post("/offer", json={"type": "offer", "sdp": "garbage"})
    assert bad.status == 400  # it took the freed place, and gave it back
    assert (await offer(client)).status == 200
    assert (await offer(client)).status == 429


async def test_a_token_spent_on_one_worker_is_refused_on_the_others_of_the_host(tmp_path):
    # Two workers of one cluster (python -m server.cluster points both at one file): HAProxy may send the second
    # offer with the same token to the other worker, whose own memory has never seen it.
    shared = tmp_path / "spent-tokens.sqlite"
    first, second = (CallTokens(parse_keys(KEY), shared=SpentTokens(shared)) for _ in range(2))
    token, _ = first.mint({"user": "u-1"})
    await first.spend_everywhere(first.verify(token))
    grant = second.verify(token)  # valid, and unknown to this worker
    with pytest.raises(TokenError, match="already used"):
        await second.spend_everywhere(grant)
    another, _ = second.mint({})
    await second.spend_everywhere(second.verify(another))  # other tokens are still good there
    # Ids are forgotten once they expire, so the file stays small.
    stale = Grant(jti="old", expires_at=int(time.time()) - 10)
    assert await SpentTokens(shared).spend(stale.jti, stale.expires_at)
    assert await SpentTokens(shared).spend("new", int(time.time()) + 60)
    with sqlite3.connect(shared) as db:
        assert {row[0] for row in db.execute("SELECT jti FROM spent")} >= {"new"}
        assert "old" not in {row[0] for row in db.execute("SELECT jti FROM spent")}
