"""The language table: every entry is complete, and every module that speaks a language reads it."""

from __future__ import annotations

import random
import re
from dataclasses import fields

import pytest

from server.app import create_app
from server.config import Settings
from server.dialogue import language_check, text, unfinished
from server.dialogue.drift_guard import heard_languages, remind
from server.dialogue.modes import APOLOGIES, PERSONAS
from server.dialogue.text import SentenceSplitter
from server.languages import BY_SCRIPT, DEFAULT_LANGUAGE, ENDERS, LANGUAGES, Language
from server.providers.base import VoiceStyle
from server.providers.local import tts, whisper
from server.scripts import CJK_SCRIPTS, SCRIPTS
from tests.fakes import fake_providers

# Fields a language may leave empty, and why: a Piper voice exists for English only; unfinished-turn words are
# listed where the list is short and clear (Latin-script languages), and frequent words tell apart only the
# languages that share a script (Latin).
MAY_BE_EMPTY = {"piper", "unfinished", "stop_words"}
RTL_SCRIPTS = ("arabic",)


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_every_language_has_every_field_filled(code: str):
    language = LANGUAGES[code]
    assert language.code == code and re.fullmatch("[a-z]{2}", code)
    for field in fields(Language):
        if field.name not in MAY_BE_EMPTY:
            assert getattr(language, field.name), f"{code}: {field.name} is empty"
    assert language.scripts and all(s in SCRIPTS for s in language.scripts), language.scripts
    assert language.direction in ("ltr", "rtl")
    assert language.piper in (None, tts.PIPER_VOICE)  # the one Piper voice installed (weights.PIPER_JOE)
    # Latin-script languages are told apart by their words; the others by their script alone (language_check
    # ranks every language that has stop words as a Latin one).
    assert bool(language.stop_words) is language.latin
    assert language.unfinished or not language.latin
    assert (language.direction == "rtl") is (language.scripts[0] in RTL_SCRIPTS)
    assert all(word == word.lower() for word in language.unfinished | language.stop_words)
    # The table's own text is in the language, and ends with one of its sentence enders.
    for said in (language.practice_greeting, language.apology):
        assert said[-1] in language.enders, said
        assert language_check.check(said, code).ok, said


def test_the_table_keeps_its_order_and_names():
    assert list(LANGUAGES)[:13] == "en es fr de zh hi ja ko pt ar ru it nl".split()  # new ones come after
    assert DEFAULT_LANGUAGE in LANGUAGES
    # A script tells one language apart: two that share a non-Latin one (Russian and Ukrainian) would need the
    # frequent words language_check uses for Latin-script languages only.
    non_latin = [language.scripts[0] for language in LANGUAGES.values() if not language.latin]
    assert sorted(non_latin) == sorted(BY_SCRIPT), non_latin
    assert len({language.native for language in LANGUAGES.values()}) == len(LANGUAGES)


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_every_persona_speaks_every_language(code: str):
    language = LANGUAGES[code]
    for persona in PERSONAS.values():
        assert language.name in persona.system_prompt(code)
    assert PERSONAS["language"].greeting(random.Random(1), code) == language.practice_greeting
    assert language.correction_example in PERSONAS["language"].system_prompt(code)
    assert APOLOGIES[code] == language.apology
    assert remind([{"role": "user", "content": "hi"}], code)[-1]["content"].endswith(f"(Reply in {language.name}.)")
    assert code in heard_languages("chat")


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_the_splitter_ends_sentences_at_each_languages_enders(code: str):
    language = LANGUAGES[code]
    for ender in language.enders:
        assert ender in ENDERS
        splitter = SentenceSplitter()
        sentences = splitter.feed(f"word{ender} next{ender} ")
        assert sentences == [f"word{ender}", f"next{ender}"], (ender, sentences)
    # The table's greetings are several sentences: each one comes out whole.
    splitter = SentenceSplitter()
    said = [*splitter.feed(language.practice_greeting), splitter.flush()]
    said = [sentence for sentence in said if sentence]
    assert "".join(said).replace(" ", "") == language.practice_greeting.replace(" ", ""), said
    assert len(said) > 1 and all(sentence[-1] in language.enders for sentence in said), said


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_scripts_drift_check_and_voices_follow_the_table(code: str):
    language = LANGUAGES[code]
    assert language_check.NATIVE_SCRIPTS[code] == set(language.scripts)
    assert (code in language_check.LATIN_LANGUAGES) is language.latin
    assert language_check.STOP_WORDS.get(code, frozenset()) == language.stop_words
    if not language.latin:
        assert language_check.detect(language.practice_greeting) == code
    assert (code in text.CJK_LANGUAGES) is language.cjk
    assert tts.EspeakTTS.voice(VoiceStyle(language=code)) == language.espeak
    assert (code in tts.PIPER_LANGUAGES) is (language.piper is not None)
    assert whisper.max_tokens(2.0, code) == (44 if language.cjk else 28)
    # Stray CJK text is dropped from the speech of every language that is not written in it.
    assert (text.spoken("Oui 好的 ok", code) == "Oui ok") is not language.cjk


def test_unfinished_words_come_from_the_table():
    for code, language in LANGUAGES.items():
        for word in language.unfinished - {"that"}:
            assert unfinished.looks_unfinished(f"Something {word}", code), (code, word)
    assert not unfinished.looks_unfinished("Je pense que", "en")  # French words do not count in English
    assert not unfinished.looks_unfinished("Я думаю что", "ru")  # no word list: punctuation is the cue


def test_cjk_ranges_are_defined_once_and_shared():
    assert CJK_SCRIPTS == ("han", "kana", "hangul")
    for leak in ("漢", "カ", "ｶ", "한", "\u3131", "\uf900"):  # Han, kana, half-width kana, Hangul, jamo, compat Han
        assert text.spoken(f"a {leak} b", "en") == "a b", leak
    assert whisper.drop_repeats("한국한국한국한국") == "한국"


async def test_get_languages_lists_the_table_for_the_call_page(aiohttp_client):
    client = await aiohttp_client(create_app(Settings(ice_loopback=True), lambda _s: fake_providers()))
    resp = await client.get("/languages")
    assert resp.status == 200 and resp.content_type == "application/json"
    body = await resp.json()
    assert body["default"] == DEFAULT_LANGUAGE
    assert [entry["code"] for entry in body["languages"]] == list(LANGUAGES)
    arabic = next(entry for entry in body["languages"] if entry["code"] == "ar")
    assert arabic == {"code": "ar", "name": "Arabic", "native_name": "العربية", "direction": "rtl",
                      "neural_voice": False}  # fmt: skip
    assert [e["code"] for e in body["languages"] if e["neural_voice"]] == [
        c for c, lang in LANGUAGES.items() if lang.piper
    ]
    assert (await client.post("/languages")).status == 405
