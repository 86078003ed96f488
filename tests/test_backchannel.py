"""What the person says over the bot: a backchannel that lets it go on, or words that take the floor."""

from __future__ import annotations

import pytest

from server.dialogue.backchannel import is_backchannel
from server.languages import LANGUAGES


@pytest.mark.parametrize(
    ("text", "language"),
    [("Mm-hm.", "en"), ("Yeah, yeah.", "en"), ("Right.", "en"), ("", "en"), ("(laughs)", "en"), ("[Laughter]", "en"),
     ("Ha ha ha.", "en"), ("Sí, claro.", "es"), ("Genau.", "de"), ("D'accord.", "fr"), ("嗯嗯", "zh"), ("うん", "ja"),
     ("Ага.", "ru"), ("Okay.", "nl")],
)  # fmt: skip
def test_listener_words_laughs_and_coughs_let_the_bot_go_on(text: str, language: str):
    assert is_backchannel(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [("Wait.", "en"), ("Sorry, can I ask something?", "en"), ("No, that's not it.", "en"), ("Yeah but why?", "en"),
     ("Hold on.", "en"), ("I would use a cache instead", "en"), ("Espera.", "es"), ("Moment mal.", "de"),
     ("Attends.", "fr"), ("等一下", "zh"), ("Подождите.", "ru"), ("yeah yeah right okay sure", "en")],
)  # fmt: skip
def test_words_that_ask_for_the_floor_or_say_more_stop_it(text: str, language: str):
    assert not is_backchannel(text, language)


def test_every_language_has_listener_words_and_floor_words():
    from server.dialogue.backchannel import FLOOR, LISTENING

    assert set(LISTENING) == set(LANGUAGES) == set(FLOOR)
