"""The offline voices say what they are given: espeak-ng reads Japanese kanji through their kana."""

from __future__ import annotations

import re

from server.providers.base import VoiceStyle
from server.providers.local.tts import EspeakTTS

KANJI = re.compile(r"[\u4e00-\u9fff]")


def test_japanese_is_handed_to_espeak_as_kana():
    espeak = EspeakTTS()
    said = espeak.speakable("日本語を勉強しています。", "ja")
    assert said == "にほんごをべんきょうしています。" and not KANJI.search(said)
    assert espeak.speakable("我在学习中文。", "zh") == "我在学习中文。"  # espeak-ng reads Mandarin's Han itself


async def test_a_japanese_sentence_with_kanji_is_spoken_at_its_length():
    # espeak-ng says "Chinese letter" for each kanji it cannot read: about 1 s per character. As kana, the
    # sentence takes about as long as it would to say.
    style = VoiceStyle("", "", "ja")
    chunks = [c async for c in EspeakTTS().synthesize("日本語を勉強しています。", style)]
    seconds = sum(c.pcm.size for c in chunks) / chunks[0].rate
    assert 1.0 < seconds < 3.5, seconds
