"""Language practice that continues, over real WebRTC (aiortc on both sides) with scripted providers: a Spanish
lesson's correction is kept with what the person said; the next Spanish call of that profile opens by revisiting
it (its greeting, and the model told in its prompt); a French call, or another profile, gets today's greeting; the
corrections read back through ``GET /history/corrections``, and a database that does not answer costs nothing but
the revisit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.rtc import CallClient
from server.config import Settings
from server.history import corrections_api
from server.history.api import WRITER
from server.history.store import Store
from server.languages import LANGUAGES
from tests.fakes import FakeLLM, fake_providers
from tests.helpers import is_, until
from tests.test_history import ANN, BOB, api_json, typed_turn

CORRECTION = "¡Casi! Se dice «ayer fui al cine». ¿Qué película viste?"
SAID = "Ayer yo va al cine con mi hermana."


class WarmedLLM(FakeLLM):
    """Records each prompt the greeting warms, and whether it is kept as an opening for later calls."""

    def __init__(self, *replies: str) -> None:
        super().__init__(*replies)
        self.warmed: list[tuple[str, bool]] = []

    async def warm(self, messages: Any, *, opening: bool = False) -> None:
        self.warmed.append((messages[0]["content"], opening))


class LanguageCall(CallClient):
    """A language practice call the way the page places one: with its language and profile id in the offer."""

    def __init__(self, url: str, profile: str, language: str) -> None:
        super().__init__(url, "language", language)
        self.profile = profile

    async def connect(self, timeout: float = 20.0) -> None:
        body = {"mode": "language", "language": self.language, "profile": self.profile}
        data = await self._negotiate("/offer", body, timeout)
        self.session_id, self.reconnect_secret = data["session_id"], data.get("reconnect_secret")


@pytest.fixture
async def lesson() -> Any:
    opened: list[CallClient] = []

    async def place(url: str, profile: str, language: str) -> tuple[LanguageCall, str]:
        """A call, once it listens, and its greeting."""
        call = LanguageCall(url, profile, language)
        opened.append(call)
        await call.connect()
        await call.wait_listening(30)
        found = call.find(is_("transcript", role="assistant"))
        assert found is not None
        return call, found[1]["text"]

    yield place
    for call in opened:
        await call.close()


def settings_in(folder: Path) -> Settings:
    return Settings(ice_loopback=True, hangover_ms=500, turn_model="off", data_dir=str(folder))


def today(language: str) -> str:
    return LANGUAGES[language].practice_greeting


async def test_a_lessons_correction_is_kept_and_the_next_lesson_in_its_language_revisits_it(
    start_server, started_apps, lesson, tmp_path: Path
):
    llm = WarmedLLM(CORRECTION, "¡Muy bien! Eso es correcto. ¿Y te gustó?")
    url = await start_server(fake_providers(llm=llm), settings_in(tmp_path))
    writer = started_apps[-1][WRITER]

    first, greeting = await lesson(url, ANN, "es")
    assert greeting == today("es")  # nothing to revisit yet
    await typed_turn(first, SAID)
    await first.end()
    await writer.flush()

    _, record = await api_json(url, "GET", f"/history/sessions/{first.session_id}", ANN)
    assert [(c["phrase"], c["said"]) for c in record["corrections"]] == [("ayer fui al cine", SAID)]
    _, listed = await api_json(url, "GET", "/history/corrections?language=es", ANN)
    (kept,) = listed["corrections"]
    assert (kept["phrase"], kept["language"], kept["count"]) == ("ayer fui al cine", "es", 1)
    assert kept["said"] == SAID and kept["revisited_at"] is None

    # The next Spanish lesson of that profile opens with it, and the model knows which one it revisits.
    second, greeting = await lesson(url, ANN, "es")
    assert greeting == LANGUAGES["es"].revisit_greeting.format(phrase="ayer fui al cine")
    assert greeting.startswith("¡Hola de nuevo! La última vez practicamos «ayer fui al cine».")
    await typed_turn(second, "Ayer fui al cine y vi una comedia.")
    system = llm.requests[-1][0]["content"]
    assert '"ayer fui al cine"' in system and SAID in system
    # Read ahead during the greeting, but not kept as an opening: no later call starts with this prompt.
    assert (system, False) in llm.warmed and (llm.warmed[0][0], True) in llm.warmed and system != llm.warmed[0][0]
    await second.end()
    await writer.flush()
    _, listed = await api_json(url, "GET", "/history/corrections?language=es", ANN)
    assert listed["corrections"][0]["revisited_at"] is not None

    # A French lesson of the same profile, or a Spanish one of another: today's greeting.
    french, greeting = await lesson(url, ANN, "fr")
    assert greeting == today("fr")
    # Switching that call to Spanish practice starts a Spanish session: it revisits too.
    switched = time.monotonic()
    french.send({"type": "mode", "mode": "language", "language": "es"})
    _, again = await french.wait_for(is_("transcript", role="assistant"), 10, switched)
    assert again["text"] == LANGUAGES["es"].revisit_greeting.format(phrase="ayer fui al cine")
    await french.end()
    bobs, greeting = await lesson(url, BOB, "es")
    assert greeting == today("es")
    await bobs.end()
    await writer.flush()
    assert await api_json(url, "GET", "/history/corrections", BOB) == (200, {"corrections": []})
    assert await api_json(url, "GET", "/history/corrections?language=fr", ANN) == (200, {"corrections": []})
    status, refused = await api_json(url, "GET", "/history/corrections?language=xx", ANN)
    assert status == 400 and "unknown language" in refused["error"]
    status, _ = await api_json(url, "GET", "/history/corrections")  # nobody named: nothing
    assert status == 401


class StalledStore(Store):
    """The history's reads of corrections hang: a database that stopped answering."""

    async def revisit(self, profile_id: str, language: str) -> Any:
        await asyncio.sleep(3600)


async def test_a_database_that_does_not_answer_gives_todays_greeting_without_delay(
    start_server, started_apps, lesson, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):  # fmt: skip
    llm = FakeLLM(CORRECTION)
    url = await start_server(fake_providers(llm=llm), settings_in(tmp_path))
    writer = started_apps[-1][WRITER]
    first, _ = await lesson(url, ANN, "es")
    await typed_turn(first, SAID)
    await first.end()
    await writer.flush()

    monkeypatch.setattr(writer.store, "revisit", StalledStore.revisit.__get__(writer.store))
    monkeypatch.setattr(corrections_api, "LOOKUP_TIMEOUT_S", 6.0)
    placed = time.monotonic()
    second = LanguageCall(url, ANN, "es")
    try:
        await second.connect()
        greeted, said = await second.wait_for(is_("transcript", role="assistant"), 10, placed)
        assert said["text"] == today("es")
        assert greeted - placed < 4.0  # not held for the look-up (6 s): HISTORY_GRACE_S at most
        await second.wait_listening(30)
        await typed_turn(second, "Hola otra vez.")  # the call goes on
        await until(lambda: "the history did not answer" in caplog.text, 10)
        async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
            assert 'parley_history_failures_total{op="revisit"} 1.0' in await resp.text()  # counted, as writes are
    finally:
        await second.close()
