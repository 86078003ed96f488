"""Is what the person said over the bot a backchannel ("mm-hm", "yeah", "right", a laugh) that lets the bot go on,
or are they taking the floor ("wait", "sorry", "no, ...")? Decided on the transcript of the overlap
(server/dialogue/turn_taking.py holds the bot's audio meanwhile, then resumes it or barges in).

Short and made only of listener words: a backchannel. No words at all (a laugh, a cough: Whisper gives nothing,
or a bracketed "(laughs)"): a backchannel too. Any word that asks for the floor, or anything longer: not.
"""

from __future__ import annotations

import re

MAX_WORDS = 3  # "yeah, yeah, right" still is one; "yeah but what about" is not

# Listener words per language, lower case (Whisper's spellings of the same sounds included).
LISTENING: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "mm mmm mhm hmm hm uh huh uh-huh mm-hm mm-hmm yeah yes yep yup right okay ok sure cool nice true "
        "exactly totally got it i see wow oh ah aha ha haha hahaha alright great good",
        "es": "mm mhm ajá aja sí si vale claro ya bueno exacto vale ok okay ah oh ja jaja entiendo",
        "fr": "mm mhm hmm oui ouais ok okay d'accord ah oh bon voilà exactement ha haha",
        "de": "mm mhm hmm ja jo okay ok genau stimmt aha ach ah oh klar gut ha haha",
        "it": "mm mhm sì si ok okay certo giusto esatto ah oh ha haha va bene",
        "pt": "mm mhm sim é ok okay certo claro exato ah oh ha haha tá ta",
        "nl": "mm mhm ja jawel oké ok okay precies klopt ah oh ha haha",
        "ru": "мм ага угу да ну так понятно ясно ок окей ах ох ха хаха",
        "zh": "嗯 嗯嗯 对 对对 好 好的 是 是的 哦 啊 哈哈 明白",
        "ja": "うん うんうん はい ええ そう そうですね なるほど ああ へえ ははは",
        "ko": "음 응 네 예 그래 맞아 아 오 하하 그렇죠",
        "hi": "हम्म हाँ हां जी ठीक अच्छा हा हाहा",
        "ar": "ممم نعم أيوه اه آه تمام طيب صح ها هاها",
    }.items()
}
# Words that ask for the floor: the person wants the bot to stop, whatever else they say.
FLOOR: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "wait stop sorry no hold hang but actually excuse pardon question",
        "es": "espera espere para perdón perdona no pero disculpa",
        "fr": "attends attendez stop pardon non mais désolé excuse",
        "de": "warte warten moment stopp sorry nein aber entschuldigung",
        "it": "aspetta aspetti scusa no ma stop",
        "pt": "espera espere desculpa não mas pera",
        "nl": "wacht stop sorry nee maar",
        "ru": "подожди подождите стоп извините нет но",
        "zh": "等 等等 等一下 不 不是 但是 可是",
        "ja": "待って ちょっと いいえ でも すみません",
        "ko": "잠깐 잠깐만 아니 근데 죄송",
        "hi": "रुको रुकिए नहीं लेकिन माफ़",
        "ar": "انتظر لحظة لا لكن آسف",
    }.items()
}
_BRACKETED = re.compile(r"[\(\[\*][^\)\]\*]*[\)\]\*]")  # "(laughs)", "[Laughter]", "*coughs*"
_WORD = re.compile(r"[\w'-]+", re.UNICODE)


def is_backchannel(text: str, language: str) -> bool:
    """True when ``text`` (what was heard over the bot) lets the bot go on."""
    words = [w.strip("'-") for w in _WORD.findall(_BRACKETED.sub(" ", text).lower())]
    words = [w for w in words if w]
    if not words:
        return True  # a laugh, a cough, a breath
    floor = FLOOR.get(language, frozenset()) | FLOOR["en"]
    if any(w in floor for w in words):
        return False
    listening = LISTENING.get(language, frozenset()) | LISTENING["en"]
    if language in ("zh", "ja"):  # no spaces between words: the whole utterance, or runs of one word
        joined = "".join(words)
        return len(joined) <= 6 and (joined in listening or all(ch in "嗯哈啊哦うんはえ" for ch in joined))
    return len(words) <= MAX_WORDS and all(w in listening for w in words)
