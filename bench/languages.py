"""Language practice with the real models: per language, how many replies stay in that language.

    nice -n 10 .venv/bin/python -m bench.languages [--languages es,fr] [--per-language 3]

Each learner line (one with a mistake, one asking to switch to English) is answered by the chat model behind
the language-practice persona, exactly as in a call (same prompt, temperature and length). Printed per language:
- raw: replies whose every sentence the language check accepts, as the model wrote them;
- spoken: replies that, after the drift guard (one new try on a drifted start, drifted sentences dropped),
  still say something, all of it in the language (the guard's new tries are real generations);
- tries: new generations the guard asked for;
- voice: the embedded voice that says it.
The LLM stage follows the environment like the server (``PARLEY_LLM=openai`` and its settings for a remote
model); speech synthesis is not run, only its voice choice.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import AsyncIterator

from server.config import Settings
from server.dialogue.drift_guard import guard
from server.dialogue.language_check import check
from server.dialogue.modes import LANGUAGE_PRACTICE
from server.dialogue.text import SentenceSplitter
from server.languages import LANGUAGES
from server.providers.base import ChatMessage, ChatModel, VoiceStyle

# What a learner might say or type, one line with a mistake in each language.
_LINES = {
    "en": ["Yesterday I goed to the park with my dog.", "I like very much cooking.", "What do you do on weekends?"],
    "es": ["Ayer yo va al parque con mi perro.", "Me gusta mucho cocinar.", "¿Qué haces los fines de semana?"],
    "fr": ["Hier, j'ai allé au parc avec mon chien.", "J'aime beaucoup cuisiner.", "Que fais-tu le week-end ?"],
    "de": ["Gestern ich bin in den Park gegangen mit mein Hund.", "Ich koche sehr gern.",
           "Was machst du am Wochenende?"],
    "zh": ["昨天我去了公园和我的狗。", "我很喜欢做饭。", "你周末做什么？"],
    "hi": ["कल मैं अपने कुत्ते के साथ पार्क जाता हूँ।", "मुझे खाना बनाना बहुत पसंद है।", "आप सप्ताहांत में क्या करते हैं?"],
    "ja": ["昨日、犬と公園に行きます。", "私は料理をするのがとても好きです。", "週末は何をしますか？"],
    "ko": ["어제 강아지랑 공원에 가요.", "저는 요리하는 것을 정말 좋아해요.", "주말에 뭐 해요?"],
    "pt": ["Ontem eu vai ao parque com meu cachorro.", "Eu gosto muito de cozinhar.",
           "O que você faz no fim de semana?"],
    "ar": ["أمس أنا أذهب إلى الحديقة مع كلبي.", "أحب الطبخ كثيرا.", "ماذا تفعل في عطلة نهاية الأسبوع؟"],
    "ru": ["Вчера я иду в парк с моя собака.", "Я очень люблю готовить.", "Что ты делаешь в выходные?"],
    "it": ["Ieri ho andato al parco con il mio cane.", "Mi piace molto cucinare.", "Cosa fai nel fine settimana?"],
    "nl": ["Gisteren ik ben naar het park gegaan met mijn hond.", "Ik kook heel graag.",
           "Wat doe je in het weekend?"],
}  # fmt: skip
# Learners fall back on a language they know: the reply must stay in the practised one.
FALLBACK_LINES = {"en": "Perdón, no entiendo. ¿Podemos hablar en español?"}
ENGLISH_FALLBACK = "Sorry, I don't understand. Can we speak English, please?"
LEARNER_LINES = {lang: [*lines, FALLBACK_LINES.get(lang, ENGLISH_FALLBACK)] for lang, lines in _LINES.items()}


def sentences(text: str) -> list[str]:
    splitter = SentenceSplitter(first_clause_min=10_000)  # whole sentences
    return [*splitter.feed(text), splitter.flush()]


def in_language(text: str, language: str) -> bool:
    parts = [s for s in sentences(text) if s]
    return bool(parts) and all(check(s, language).ok for s in parts)


async def collect(stream: AsyncIterator[str]) -> str:
    return "".join([delta async for delta in stream]).strip()


async def one_reply(llm: ChatModel, language: str, line: str, remote: bool) -> tuple[str, str, int]:
    """(raw reply, what would be spoken, new tries the guard asked for)."""
    messages = [
        {"role": "system", "content": LANGUAGE_PRACTICE.system_prompt(language)},
        {"role": "assistant", "content": LANGUAGE_PRACTICE.greeting(random.Random(0), language)},
        {"role": "user", "content": line},
    ]
    temperature = LANGUAGE_PRACTICE.remote_temperature if remote else LANGUAGE_PRACTICE.temperature
    max_tokens = LANGUAGE_PRACTICE.remote_max_tokens if remote else LANGUAGE_PRACTICE.max_tokens
    raw = await collect(llm.stream(messages, temperature=temperature, max_tokens=max_tokens))  # type: ignore[arg-type]
    tries = 0

    async def replay() -> AsyncIterator[str]:
        yield raw

    def make_stream(prompt: list[ChatMessage]) -> AsyncIterator[str]:
        nonlocal tries
        tries += 1
        if tries == 1:
            return replay()  # the guard judges the reply measured above, and generates only its new try
        return llm.stream(prompt, temperature=temperature, max_tokens=max_tokens)

    spoken = await collect(guard(make_stream, messages, "language", language))  # type: ignore[arg-type]
    return raw, spoken, tries - 1


async def run(languages: list[str], per_language: int, verbose: bool) -> None:
    from server.providers.registry import build

    settings = Settings.from_env()
    providers = await asyncio.to_thread(build, settings)
    remote = settings.provider("llm") == "openai"
    voice_for = getattr(providers.tts, "voice_for", lambda style: style.voice)
    rows = []
    started = time.monotonic()
    for language in languages:
        raw_ok = spoken_ok = tries = 0
        lines = LEARNER_LINES[language][:per_language]
        for line in lines:
            raw, spoken, extra = await one_reply(providers.llm, language, line, remote)
            raw_ok += in_language(raw, language)
            spoken_ok += bool(spoken) and in_language(spoken, language)
            tries += extra
            if verbose:
                print(f"[{language}] {line}\n  raw:    {raw}\n  spoken: {spoken}", flush=True)
        rows.append((language, len(lines), raw_ok, spoken_ok, tries, voice_for(VoiceStyle(language=language))))
    print(f"\nLLM: {type(providers.llm).__name__} {settings.llm_model or ''}  ({time.monotonic() - started:.0f} s)")
    print(f"{'language':<14} {'replies':>7} {'raw':>6} {'spoken':>7} {'tries':>6}  voice")
    for language, n, raw_ok, spoken_ok, tries, voice in rows:
        print(f"{language + ' ' + LANGUAGES[language].name:<14} {n:>7} {raw_ok:>6} {spoken_ok:>7} {tries:>6}  {voice}")
    total = sum(r[1] for r in rows)
    print(f"{'all':<14} {total:>7} {sum(r[2] for r in rows) / total:>6.0%} {sum(r[3] for r in rows) / total:>7.0%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--per-language", type=int, default=4)
    parser.add_argument("--verbose", action="store_true", help="print every reply")
    args = parser.parse_args()
    asyncio.run(run(args.languages.split(","), args.per_language, args.verbose))


if __name__ == "__main__":
    main()
