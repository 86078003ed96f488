"""Call tokens: short-lived, single-use JWTs (PyJWT, HS256) that an app's backend mints with its API key and
hands to a browser, which presents one to ``/ice`` and ``/offer``.

A token says until when the call may start (``exp``), which call it is (``jti``, accepted once), the modes and
languages the call may use (``modes``, ``languages``; absent: any) and the app's own id of the person
(``sub``, opaque to us, kept with the call). ``PARLEY_SIGNING_KEYS`` lists the keys: the first signs, every one
verifies, so a key is rotated by putting the new one first and dropping the old one once its tokens expired.
"""

from __future__ import annotations

import heapq
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from server.dialogue.modes import PERSONAS
from server.languages import LANGUAGES
from server.spent_tokens import SpentTokens

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
AUDIENCE = "parley-call"  # a JWT signed with the same key for another purpose is not a call token
MIN_KEY_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
MAX_TTL_S = 600  # a token is for starting a call soon, not a session cookie
MAX_USER_CHARS = 128
MAX_REQUEST_BYTES = 4096  # a mint request's body
MAX_SPENT = 100_000  # spent token ids remembered at once (each until its expiry): bounded memory


class TokenError(Exception):
    """Why a token or a request for one is refused, and the HTTP status that says so."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What a verified call token allows."""

    jti: str
    expires_at: int
    user: str | None = None
    modes: tuple[str, ...] | None = None  # None: any
    languages: tuple[str, ...] | None = None

    def check(self, mode: str, language: str) -> None:
        """Raises TokenError (403) when the token does not allow this mode or language."""
        if self.modes is not None and mode not in self.modes:
            raise TokenError(f"this call token does not allow mode {mode!r} (allowed: {', '.join(self.modes)})", 403)
        if self.languages is not None and language not in self.languages:
            allowed = ", ".join(self.languages)
            raise TokenError(f"this call token does not allow language {language!r} (allowed: {allowed})", 403)

    def default_mode(self) -> str | None:
        return self.modes[0] if self.modes else None

    def default_language(self) -> str | None:
        return self.languages[0] if self.languages else None


def parse_keys(raw: str) -> list[bytes]:
    """``PARLEY_SIGNING_KEYS``: comma-separated secrets, each at least 32 bytes; the first signs."""
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    if any(len(k) < MIN_KEY_BYTES for k in keys):
        raise ValueError(f"PARLEY_SIGNING_KEYS: every key must be at least {MIN_KEY_BYTES} bytes long")
    return keys


def _choices(body: dict[str, Any], one: str, many: str, known: Iterable[str]) -> tuple[str, ...] | None:
    """``mode``/``modes`` (or ``language``/``languages``) of a mint request: None when neither is given."""
    if one in body and many in body:
        raise TokenError(f'give "{one}" or "{many}", not both', 400)
    if one in body:
        values = [body[one]]
    elif many in body:
        values = body[many]
        if not isinstance(values, list) or not values:
            raise TokenError(f'"{many}" must be a non-empty list', 400)
    else:
        return None
    known = tuple(known)
    for value in values:
        if not isinstance(value, str) or value not in known:
            raise TokenError(f"unknown {one} {value!r}; use one of {', '.join(known)}", 400)
    return tuple(dict.fromkeys(values))  # in order, without repeats: the first is the call's default


class CallTokens:
    """Mints and verifies call tokens, and remembers which were spent."""

    def __init__(self, keys: list[bytes], default_ttl_s: float = 60.0, shared: SpentTokens | None = None) -> None:
        self.keys = keys
        self.default_ttl_s = default_ttl_s
        self.shared = shared  # the host's workers' spent tokens (PARLEY_SPENT_TOKENS_DB), checked after this one's
        self._spent: set[str] = set()
        self._expiries: list[tuple[int, str]] = []  # a heap, to forget spent ids once they expire

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def mint(self, body: Any, now: float | None = None) -> tuple[str, int]:
        """A token for the scope a mint request asks for; returns (token, expiry as Unix time)."""
        if not isinstance(body, dict):
            raise TokenError("the body must be a JSON object", 400)
        unknown = set(body) - {"mode", "modes", "language", "languages", "user", "ttl_s"}
        if unknown:
            raise TokenError(f"unknown field(s): {', '.join(sorted(unknown))}", 400)
        modes = _choices(body, "mode", "modes", PERSONAS)
        languages = _choices(body, "language", "languages", LANGUAGES)
        user = body.get("user")
        if user is not None and (
            not isinstance(user, str) or not 0 < len(user) <= MAX_USER_CHARS or not user.isprintable()
        ):
            raise TokenError(f'"user" must be printable text of 1 to {MAX_USER_CHARS} characters', 400)
        ttl = body.get("ttl_s", self.default_ttl_s)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 1 <= ttl <= MAX_TTL_S:
            raise TokenError(f'"ttl_s" must be a number of seconds from 1 to {MAX_TTL_S}', 400)
        issued = int(time.time() if now is None else now)
        expires = issued + int(ttl)
        claims: dict[str, Any] = {"aud": AUDIENCE, "iat": issued, "exp": expires, "jti": secrets.token_urlsafe(16)}
        if user is not None:
            claims["sub"] = user
        if modes is not None:
            claims["modes"] = list(modes)
        if languages is not None:
            claims["languages"] = list(languages)
        return jwt.encode(claims, self.keys[0], algorithm=ALGORITHM), expires

    def verify(self, token: str, now: float | None = None) -> Grant:
        """The grant of a valid, unexpired, unspent token; TokenError (401) saying what is wrong otherwise."""
        claims: dict[str, Any] | None = None
        for key in self.keys:  # at most a few: the current key and the one being retired
            try:
                claims = jwt.decode(
                    token, key, algorithms=[ALGORITHM], audience=AUDIENCE,
                    options={"require": ["exp", "iat", "jti", "aud"], "verify_exp": False},
                )  # fmt: skip
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as exc:
                raise TokenError(f"the call token is not valid ({exc})") from exc
        if claims is None:
            raise TokenError("the call token is not valid (its signature does not match)")
        grant = _grant(claims)
        # Checked here rather than by PyJWT so that "now" can be given (tests) and the message says what to do.
        if grant.expires_at <= (time.time() if now is None else now):
            raise TokenError("the call token has expired; ask the app for a new one")
        if grant.jti in self._spent:
            raise TokenError("the call token was already used; ask the app for a new one")
        return grant

    def spend(self, grant: Grant, now: float | None = None) -> None:
        """Marks a verified token used (synchronously: two offers with one token cannot both get here unspent)."""
        now = time.time() if now is None else now
        while self._expiries and self._expiries[0][0] <= now:
            self._spent.discard(heapq.heappop(self._expiries)[1])
        if grant.jti in self._spent:
            raise TokenError("the call token was already used; ask the app for a new one")
        if len(self._spent) >= MAX_SPENT:
            raise TokenError("too many call tokens are in use; try again in a minute", 503)
        self._spent.add(grant.jti)
        heapq.heappush(self._expiries, (grant.expires_at, grant.jti))

    async def spend_everywhere(self, grant: Grant) -> None:
        """``spend`` here (synchronously, first), then in the store the host's workers share, if there is one."""
        self.spend(grant)
        if self.shared is not None and not await self.shared.spend(grant.jti, grant.expires_at):
            raise TokenError("the call token was already used; ask the app for a new one")


def _grant(claims: dict[str, Any]) -> Grant:
    def strings(name: str) -> tuple[str, ...] | None:
        value = claims.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TokenError(f"the call token is not valid ({name} is not a list of names)")
        return tuple(value)

    user = claims.get("sub")
    if not isinstance(claims["jti"], str) or not isinstance(claims["exp"], int) or not isinstance(user, str | None):
        raise TokenError("the call token is not valid (malformed claims)")
    return Grant(claims["jti"], claims["exp"], user, strings("modes"), strings("languages"))
