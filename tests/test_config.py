"""Settings: environment first, flags over it, clear errors for bad values."""

from __future__ import annotations

import pytest

from server.config import Settings


def test_environment_values_are_typed():
    env = {"PARLEY_PORT": "9001", "PARLEY_HANGOVER_MS": "650", "PARLEY_ICE_LOOPBACK": "true", "OTHER": "x"}
    settings = Settings.from_env(env)
    assert (settings.port, settings.hangover_ms, settings.ice_loopback) == (9001, 650, True)
    assert Settings.from_env({}).hangover_ms is None  # each mode's own hang-over


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PARLEY_PORT": "eighty"}, "PARLEY_PORT"),
        ({"PARLEY_HANGOVER_MS": "20"}, "PARLEY_HANGOVER_MS"),
        ({"PARLEY_LLM": "gpt-17"}, "PARLEY_LLM"),
        ({"PARLEY_VAD_THRESHOLD": "2"}, "PARLEY_VAD_THRESHOLD"),
    ],
)
def test_bad_values_are_named(env, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_env(env)


def test_an_openai_key_selects_the_seeds_setup_unless_a_stage_says_otherwise():
    assert Settings.from_env({}).provider("llm") == "local"
    remote = Settings.from_env({"OPENAI_API_KEY": "sk-x"})
    assert (remote.stt, remote.llm, remote.tts) == ("openai", "openai", "openai")
    mixed = Settings.from_env({"OPENAI_API_KEY": "sk-x", "PARLEY_STT": "local", "PARLEY_TTS": "local"})
    assert (mixed.stt, mixed.llm, mixed.tts) == ("local", "openai", "local")
    assert "sk-x" not in repr(remote)  # the key is never part of the settings
