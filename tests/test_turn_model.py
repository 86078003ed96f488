"""The end-of-turn model (Smart Turn v3, from the installed Pipecat wheel, sha256-checked) on recorded speech: a
sentence that has ended is heard as complete, and the same voice stopped after a word that leads on ("because
they", "these couples", "de") is heard as not complete, in English and Spanish. Its part in a call: test_unfinished.py
(a real call) and test_turn_taking.py (the silence it decides)."""

from __future__ import annotations

import numpy as np
import pytest

from parley.audio import read_wav
from server.audio.turn_model import TurnModel
from server.providers.local import weights
from tests.helpers import shared_clip

pytestmark = pytest.mark.shared_audio

QUIET = np.zeros(3200, dtype=np.float32)  # the 200 ms of silence a pause has when the model is asked
COMPLETE = [
    "en/fleurs_en_cuttledoc_004_16k.wav", "en/fleurs_en_sonar_2_16k.wav", "en/fleurs_en_sonar_1_16k.wav",
    "es/picovoice_test_es_16k.wav", "es/fleurs_es_cuttledoc_006_16k.wav", "de/fleurs_de_cuttledoc_005_16k.wav",
]  # fmt: skip
# Where the words so far lead on: the end of a word (by Whisper's word timings) inside the sentence.
STOPPED = [
    ("en/fleurs_en_cuttledoc_004_16k.wav", 2.54),  # "many people don't think about them as dinosaurs because they"
    ("en/fleurs_en_sonar_2_16k.wav", 1.26),  # "These couples"
    ("es/picovoice_test_es_16k.wav", 3.72),  # "Las arenas son blanquecinas, de"
]


@pytest.fixture(scope="module")
def model() -> TurnModel:
    return TurnModel(weights.ensure(weights.SMART_TURN))


def clip(name: str) -> np.ndarray:
    return read_wav(shared_clip(name), 16_000).astype(np.float32) / 32768


@pytest.mark.parametrize("name", COMPLETE)
def test_a_finished_sentence_is_heard_as_complete(model: TurnModel, name: str):
    assert model.complete_probability(np.concatenate([clip(name), QUIET])) >= 0.8


@pytest.mark.parametrize(("name", "seconds"), STOPPED)
def test_a_voice_stopped_after_a_word_that_leads_on_is_heard_as_not_done(model: TurnModel, name: str, seconds: float):
    audio = clip(name)
    assert model.complete_probability(np.concatenate([audio[: int(seconds * 16_000)], QUIET])) < 0.5


async def test_the_verdict_is_given_off_the_event_loop_and_long_turns_are_read_to_their_last_8_s(model: TurnModel):
    audio = clip("en/fleurs_en_sonar_2_16k.wav")
    long_turn = np.concatenate([np.random.default_rng(1).normal(0, 0.05, 20 * 16_000).astype(np.float32), audio])
    assert await model.complete(long_turn) == pytest.approx(model.complete_probability(long_turn[-8 * 16_000 :]))
    assert await model.complete(long_turn) != pytest.approx(model.complete_probability(long_turn[: 8 * 16_000]))
