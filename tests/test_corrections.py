"""Language practice that continues (server/history/corrections.py), without a call: the correct forms found in
replies in every language and quote style, and nothing where a reply corrects nothing; the revisit greetings in
their languages; on a real database (SQLite, and PostgreSQL where the tests start one), a lesson's corrections kept
with what was said, the one a session revisits (least recently revisited, most frequent), deletes taking them
along, and a database of the previous release upgraded in place with its records kept."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from server.dialogue import language_check
from server.dialogue.modes import PERSONAS, Revisit
from server.history import db
from server.history.corrections import extract, fold
from server.history.export import to_markdown
from server.history.recorder import Recorder
from server.history.schema import Base
from server.history.store import Store
from server.history.writer import Writer
from server.languages import LANGUAGES
from tests import test_history_store
from tests.test_history_store import NOW, a_session

# The same databases as the history's own tests: a SQLite file, and PostgreSQL where the tests start a cluster.
url = test_history_store.url


@pytest.fixture
async def history(url: str) -> AsyncIterator[Store]:
    await asyncio.to_thread(db.migrate, url)
    store = Store(db.create_engine(url))
    yield store
    await store.close()


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_the_correction_in_each_languages_own_example_is_found(code: str):
    """The prompt's example is how the model learns to write a correction: each language's is found in full."""
    _learner, reply = LANGUAGES[code].correction_example.split(" You: ")
    (phrase,) = extract(reply, code)
    assert phrase in reply and len(phrase) > 5 and phrase[0] not in '"“«「„'


@pytest.mark.parametrize(
    ("language", "reply", "expected"),
    [
        ("es", "¡Casi! Se dice así: «Ayer fui al cine.» ¿Qué viste?", ["Ayer fui al cine"]),
        ("es", 'Muy bien. También se puede decir "fui al cine ayer" o se dice “fuimos al cine”.',
         ["fui al cine ayer", "fuimos al cine"]),
        ("fr", "Presque ! On dit plutôt « je suis allé au cinéma ». Tu as vu quoi ?", ["je suis allé au cinéma"]),
        ("de", "Fast! Man sagt „gestern bin ich gegangen“. Oder sag »ich bin gegangen«.",
         ["gestern bin ich gegangen", "ich bin gegangen"]),
        ("ja", "おしい！『昨日行きました』って言いますね。", ["昨日行きました"]),
        ("ja", "「行きました」の方が自然です。", ["行きました"]),
        ("zh", "不错！应该说“我昨天去了”。", ["我昨天去了"]),
        ("ko", '거의 맞아요! "갔어요"라고 해요.', ["갔어요"]),
        ("ru", "Почти! Лучше сказать «я ходил в кино».", ["я ходил в кино"]),
        ("pt", "Quase! A gente diz “eu fui”. E você?", ["eu fui"]),
        ("en", "Nice! You could also say “I went to the movies”, that sounds natural.", ["I went to the movies"]),
    ],
)  # fmt: skip
def test_corrections_are_found_in_every_quote_style(language: str, reply: str, expected: list[str]):
    assert extract(reply, language) == expected


@pytest.mark.parametrize(
    ("language", "reply"),
    [
        ("en", 'I loved "Alien". What did you think of it?'),  # a quote, but no correction
        ("en", 'Your essay "My summer" sounds fun.'),  # "say" inside another word
        ("es", "¡Muy bien dicho! ¿Qué hiciste después?"),
        ("es", "Se dice «»."),  # nothing in the quotes
        ("fr", "On dit souvent ça, oui."),  # the cue without a quote
        ("xx", 'You\'d say "hello".'),  # a language the server does not know
    ],
)
def test_a_reply_that_corrects_nothing_keeps_nothing(language: str, reply: str):
    assert extract(reply, language) == []


def test_the_same_phrase_is_one_whatever_its_case_and_punctuation():
    assert fold("Ayer fui al cine.") == fold("  ayer   fui al cine") == "ayer fui al cine"
    assert fold("¿Dónde está?") == fold("dónde está")


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_each_language_revisits_in_its_own_words(code: str):
    phrase = extract(LANGUAGES[code].correction_example.split(" You: ")[1], code)[0]
    persona = PERSONAS["language"]
    greeting = persona.greeting(random.Random(1), code, revisit=Revisit(phrase, "said before"))
    assert phrase in greeting and greeting != LANGUAGES[code].practice_greeting
    assert greeting[-1] in LANGUAGES[code].enders and language_check.check(greeting, code).ok, greeting
    prompt = persona.system_prompt(code, Revisit(phrase, "said before"))
    assert prompt.startswith(persona.system_prompt(code)[:-1])  # a cached prompt's beginning still serves
    assert f'"{phrase}"' in prompt and '"said before"' in prompt
    # Other modes greet as always.
    assert PERSONAS["chat"].greeting(random.Random(1), code, revisit=Revisit(phrase)) in PERSONAS["chat"].greetings


async def lesson(store: Store, session_id: str, profile: str, language: str, exchanges: list[tuple[str, str]]) -> None:
    """A language practice session, recorded as a call records it: the greeting, then the person and the bot."""
    writer = Writer(store)
    writer.start()
    rec = Recorder(writer, session_id, (profile, "page"), None, "language", language, lambda: None)
    rec.event({"type": "transcript", "role": "assistant", "text": 'Hola. Se dice "hola".', "interrupted": False})
    for said, reply in exchanges:
        rec.event({"type": "transcript", "role": "user", "text": said, "interrupted": False})
        rec.event({"type": "transcript", "role": "assistant", "text": reply, "interrupted": False})
    rec.closed()
    assert await writer.flush()
    assert writer.failures == 0
    await writer.close()  # (its engine's connections go; the test's reads open new ones)


async def test_a_lesson_keeps_its_corrections_with_what_was_said(history: Store):
    await lesson(history, "s1", "p:ann", "es", [
        ("Ayer yo va al cine.", "¡Casi! Se dice «ayer fui al cine». ¿Qué viste?"),
        ("Una película muy bien.", "¡Genial! Se dice «muy buena». ¿Te gustó?"),
        ("Sí, me gustó.", "¡Perfecto! ¿Con quién fuiste?"),
    ])  # fmt: skip
    session = await history.get_session("s1")
    assert session is not None
    # The greeting quotes with a cue too, but it answers nobody: it is not a correction.
    assert [(c["phrase"], c["said"]) for c in session["corrections"]] == [
        ("ayer fui al cine", "Ayer yo va al cine."), ("muy buena", "Una película muy bien."),
    ]  # fmt: skip
    assert "### Corrections" in (markdown := to_markdown([session]))
    assert "- ayer fui al cine (you said: Ayer yo va al cine.)" in markdown
    listed = await history.list_corrections("p:ann", language="es")
    assert [(c["phrase"], c["count"]) for c in listed] == [("muy buena", 1), ("ayer fui al cine", 1)]
    assert await history.list_corrections("p:bob") == []
    assert await history.list_corrections("p:ann", language="fr") == []


async def test_a_session_revisits_the_least_recently_revisited_then_the_most_frequent(history: Store):
    one = "¡Casi! Se dice «ayer fui al cine»."
    await lesson(history, "s1", "p:ann", "es", [("ayer va", one), ("tengo 20 año", "Se dice «tengo 20 años».")])
    await lesson(history, "s2", "p:ann", "es", [("ayer voy", one)])
    await lesson(history, "s3", "p:ann", "fr", [("j'ai allé", "On dit « je suis allé ».")])
    chosen = await history.revisit("p:ann", "es")
    assert chosen is not None and (chosen.phrase, chosen.said) == ("ayer fui al cine", "ayer voy")  # twice, latest
    await history.mark_revisited("p:ann", "es", chosen.key, NOW)
    chosen = await history.revisit("p:ann", "es")
    assert chosen is not None and chosen.phrase == "tengo 20 años"  # never revisited comes first
    await history.mark_revisited("p:ann", "es", chosen.key, NOW + timedelta(days=1))
    chosen = await history.revisit("p:ann", "es")
    assert chosen is not None and chosen.phrase == "ayer fui al cine"  # revisited longest ago
    assert await history.revisit("p:bob", "es") is None
    french = await history.revisit("p:ann", "fr")
    assert french is not None and french.phrase == "je suis allé"


async def test_deleting_a_session_or_a_profile_takes_its_corrections_along(history: Store):
    await lesson(history, "s1", "p:ann", "es", [("ayer va", "Se dice «ayer fui».")])
    await lesson(history, "s2", "p:ann", "es", [("tengo 20 año", "Se dice «tengo 20 años».")])
    await history.delete_session("s1")
    assert [c["phrase"] for c in await history.list_corrections("p:ann")] == ["tengo 20 años"]
    await history.delete_profile("p:ann")
    assert await history.list_corrections("p:ann") == [] and await history.revisit("p:ann", "es") is None


async def test_a_database_of_the_previous_release_is_upgraded_and_keeps_its_records(url: str):
    await asyncio.to_thread(db.migrate, url, "0002")  # as the release before corrections made it
    engine = db.create_engine(url)
    async with engine.begin() as raw:
        old = "'2026-01-01 10:00:00+00:00'"
        await raw.execute(text(f"INSERT INTO profiles VALUES ('p:old', 'page', 'Old', {old}, {old})"))
        await raw.execute(text(f"INSERT INTO sessions VALUES ('s-old', 's-old', 'p:old', 'language', 'es', {old}, "
                               f"{old}, 'idle')"))  # fmt: skip
        await raw.execute(text("INSERT INTO turns (session_id, seq, role, text, interrupted, at) "
                               f"VALUES ('s-old', 1, 'user', 'ayer yo va', false, {old})"))  # fmt: skip
    await engine.dispose()
    await asyncio.to_thread(db.migrate, url)
    store = Store(db.create_engine(url))
    try:
        session: dict[str, Any] | None = await store.get_session("s-old")
        assert session is not None and session["turns"][0]["text"] == "ayer yo va" and session["corrections"] == []
        await store.add_correction("s-old", "p:old", "es", "ayer fui", "ayer yo va", NOW)  # the new table is there
        chosen = await store.revisit("p:old", "es")
        assert chosen is not None and chosen.phrase == "ayer fui"
    finally:
        await store.close()


async def test_the_migrations_make_the_schema_the_code_maps(url: str):
    await asyncio.to_thread(db.migrate, url)
    engine = db.create_engine(url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_a_session_without_a_profile_keeps_its_corrections_but_none_is_revisited(history: Store):
    await a_session(history, "anon", profile=None)
    await history.add_correction("anon", None, "es", "ayer fui", "ayer va", NOW)
    assert [c["phrase"] for c in (await history.get_session("anon") or {})["corrections"]] == ["ayer fui"]
    assert await history.list_corrections("p:ann") == []
