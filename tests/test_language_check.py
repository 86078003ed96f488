"""Drift catching on real sentences: replies in each of the 13 languages pass, drifted ones are caught."""

from __future__ import annotations

import pytest

from server.dialogue.language_check import check, detect

# Sentences a patient native speaker would say, several per language (corrections, questions, small talk).
GOOD = {
    "en": [
        "That sounds like a lovely day!",
        "Almost! You'd usually say 'I went', not 'I goed'.",
        "What did you have for dinner?",
        "Oh, I love hiking too, especially in autumn.",
    ],
    "es": [
        "¡Qué bien! Me encanta la playa.",
        "Casi, se dice 'fui al mercado', no 'fue al mercado'.",
        "¿Y qué comiste después?",
        "Yo también prefiero el café por la mañana.",
    ],
    "fr": [
        "C'est super, j'adore le cinéma aussi !",
        "Presque ! On dit plutôt « je suis allé », pas « j'ai allé ».",
        "Qu'est-ce que tu as mangé ce midi ?",
        "Moi, je préfère la montagne en hiver.",
    ],
    "de": [
        "Das klingt wirklich schön!",
        "Fast richtig! Man sagt „ich bin gegangen“, nicht „ich habe gegangen“.",
        "Was hast du heute Abend vor?",
        "Ich trinke morgens auch gern Kaffee.",
    ],
    "zh": [
        "听起来很不错！",
        "差不多，不过我们一般说“我去了商店”。",
        "你周末喜欢做什么？",
        "我也很喜欢喝茶，特别是绿茶。",
    ],
    "hi": [
        "यह तो बहुत अच्छी बात है!",
        "लगभग सही! हम आमतौर पर कहते हैं 'मैं बाज़ार गया था'।",
        "आपको कौन सा खाना सबसे ज़्यादा पसंद है?",
        "मुझे भी सुबह चाय पीना अच्छा लगता है।",
    ],
    "ja": [
        "それはいいですね！",
        "おしいです！「昨日、映画を見ました」と言いますよ。",
        "週末は何をするのが好きですか？",
        "私もラーメンが大好きです。",
    ],
    "ko": [
        "정말 좋네요!",
        "거의 맞아요! 보통 '어제 영화를 봤어요'라고 해요.",
        "주말에 보통 뭐 하세요?",
        "저도 커피를 정말 좋아해요.",
    ],
    "pt": [
        "Que legal! Eu também adoro praia.",
        "Quase! A gente diz 'eu fui ao mercado', não 'eu foi'.",
        "E o que você comeu no almoço?",
        "Eu prefiro café sem açúcar.",
    ],
    "ar": [
        "هذا رائع جدا!",
        "تقريبا! نقول عادة 'ذهبت إلى السوق'.",
        "ماذا تحب أن تفعل في عطلة نهاية الأسبوع؟",
        "أنا أيضا أحب القهوة في الصباح.",
    ],
    "ru": [
        "Как здорово!",
        "Почти! Обычно говорят «я ходил в магазин».",
        "А что ты ел на обед?",
        "Я тоже люблю гулять в парке.",
    ],
    "it": [
        "Che bello, anch'io adoro il mare!",
        "Quasi! Si dice 'sono andato', non 'ho andato'.",
        "Cosa hai mangiato a pranzo?",
        "Io preferisco il caffè senza zucchero.",
    ],
    "nl": [
        "Wat leuk, dat klinkt echt gezellig!",
        "Bijna! Je zegt meestal 'ik ben gegaan', niet 'ik heb gegaan'.",
        "Wat heb je vandaag gegeten?",
        "Ik drink ook graag koffie in de ochtend.",
    ],
}

# Replies that drifted: (session language, sentence). English is the usual escape; Chinese leaks everywhere.
DRIFTED = [
    ("es", "That's great, what did you do after work?"),
    ("fr", "That sounds really nice, tell me more about it."),
    ("de", "I think that is a very good idea."),
    ("pt", "Oh, that's great! What did you have for lunch?"),
    ("it", "What a lovely day, I am so happy for you."),
    ("nl", "That is a good question, let me think about it."),
    ("en", "¿Y qué comiste después del trabajo?"),
    ("en", "Qu'est-ce que tu as fait aujourd'hui avec tes amis ?"),
    ("es", "Eu gosto muito de você, e você não sabe isso."),
    ("pt", "¿Qué hiciste hoy? Yo estoy muy bien, gracias."),
    ("de", "Ik heb vandaag niet veel gedaan, maar het was leuk."),
    ("nl", "Ich habe heute nicht viel gemacht, aber es war schön."),
    ("it", "Je suis allé au cinéma avec mes amis, c'est très bien."),
    ("es", "我觉得这个主意很好。"),
    ("fr", "这是一个很好的问题。"),
    ("en", "Привет, как дела?"),
    ("zh", "That's a great question, tell me more."),
    ("zh", "それはいいですね、私も行きたいです。"),
    ("ja", "我觉得这个主意非常好，我们明天去吧。"),
    ("ja", "That sounds fun, what else did you do?"),
    ("ko", "我也很喜欢喝茶。"),
    ("ko", "I really like coffee too."),
    ("ar", "I like coffee in the morning too."),
    ("ar", "मुझे भी चाय पसंद है।"),
    ("hi", "Mujhe bhi chai bahut pasand hai, aur aapko?"),
    ("hi", "مجھے بھی چائے پسند ہے۔"),
    ("ru", "I also like walking in the park."),
    ("ru", "我也喜欢在公园散步。"),
]


@pytest.mark.parametrize(("language", "sentence"), [(lang, s) for lang, ss in GOOD.items() for s in ss])
def test_sentences_in_the_session_language_are_spoken_as_they_are(language: str, sentence: str) -> None:
    verdict = check(sentence, language)
    assert verdict.ok, verdict.reason
    assert verdict.text == sentence


@pytest.mark.parametrize(("language", "sentence"), DRIFTED)
def test_sentences_in_another_language_or_script_are_caught(language: str, sentence: str) -> None:
    assert not check(sentence, language).ok


def test_a_single_leaked_character_is_removed_not_the_whole_sentence() -> None:
    verdict = check("Me encanta el sushi, sobre todo el 寿 de salmón.", "es")
    assert verdict.ok and "寿" not in verdict.text and "salmón" in verdict.text


def test_names_numbers_and_short_words_do_not_count_as_drift() -> None:
    assert check("¡Hola!", "es").ok
    assert check("OK.", "fr").ok
    assert check("2024.", "ja").ok
    assert check("我喜欢用Python写代码。", "zh").ok
    assert check("Я работаю в Google уже три года.", "ru").ok
    assert check("Ich wohne in New York.", "de").ok


@pytest.mark.parametrize(("language", "sentences"), GOOD.items())
def test_the_language_a_person_writes_in_is_recognized(language: str, sentences: list[str]) -> None:
    # Chat follows the person's language: a short line may stay unknown, never wrongly recognized.
    found = [detect(s) for s in sentences]
    assert all(f in (language, None) for f in found), found
    assert detect(" ".join(sentences)) == language


def test_a_sentence_stuck_in_a_loop_is_not_spoken() -> None:
    # As the embedded model wrote it in a Hindi session, until its token cap.
    loop = "मैं आपके लिए इस बार लिए आपके लिए इस बार लिए आपके लिए इस बार लिए आपके लिए इस बार"
    assert not check(loop, "hi").ok
    assert check("Je pense que oui, je pense que c'est vrai.", "fr").ok  # twice is speech, not a loop
