"""Every supported language in one table: adding a language is one entry here (plus its Unicode ranges in
``server/scripts.py`` if it brings a new script, and the weights in ``providers/local/weights.py`` if it names a
new Piper voice).

Everything else reads this table: the personas' prompts, greetings and apologies (``dialogue/modes.py``), the
drift check's scripts and frequent words (``dialogue/language_check.py``), the unfinished-turn words
(``dialogue/unfinished.py``), the sentence splitter's enders (``dialogue/text.py``), the offline voices
(``providers/local/tts.py``), Whisper's language codes (``providers/local/whisper.py``), the call page's picker
(``GET /languages``) and the Python client's choices. ``tests/test_languages.py`` checks that an entry is
complete and that those modules agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from server.scripts import CJK_SCRIPTS

# Sentence enders in Latin-script text; "." also sits inside "3.5" and "e.g.", so the splitter ends a sentence
# at these only before a space (text.py); every other ender (。 । ؟ ...) ends one where it stands.
WESTERN_ENDERS = ".!?…"


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, as the wire protocol names it
    name: str  # in English: the prompts say "Reply only in {name}"
    native: str  # in itself: the call page's picker shows it
    whisper: str  # Whisper's code for it
    espeak: str  # espeak-ng voice, the offline voice every language has
    piper: str | None  # Piper (neural, offline) voice, where one is installed (providers/local/weights.py)
    scripts: tuple[str, ...]  # native scripts, names in server.scripts.SCRIPTS; the first one tells it apart
    direction: Literal["ltr", "rtl"]
    enders: str  # characters that end a sentence
    # Words a sentence does not end on (conjunctions, articles, prepositions, fillers): trailing off on one,
    # the person is still thinking. Empty where the list is not short and clear: punctuation is the cue there.
    unfinished: frozenset[str]
    # Frequent words (nearly) only this language uses, to tell Latin-script languages apart. Words two of them
    # share ("de", "que", "la", "un", "je", "was", "is", "en", "du", "il", "por") are left out: they would count
    # for both. Empty for a language whose script tells it apart.
    stop_words: frozenset[str]
    practice_greeting: str  # language practice's opening line
    apology: str  # said when a stage fails mid-turn, where speech synthesis still works
    # One exchange showing a gentle inline correction, added to language practice's prompt: the small model
    # copies examples far better than it follows instructions, and an example in the language keeps it there.
    correction_example: str
    # What the bot says just before the quoted correct form ("You'd say "..."", "Se dice «...»"), lower-case; "{}"
    # marks where the quote sits (after it in Japanese and Korean). The history keeps what follows them
    # (server/history/corrections.py), so they follow the wording of correction_example and its near variants.
    correction_cues: tuple[str, ...]
    # The next session's opening line when it revisits one of those ({phrase}: the correct form, in the quotes of
    # the language), instead of practice_greeting.
    revisit_greeting: str

    @property
    def cjk(self) -> bool:
        """Written (partly) in Han, kana or Hangul: such text in another language's reply is a leak."""
        return any(s in CJK_SCRIPTS for s in self.scripts)

    @property
    def latin(self) -> bool:
        return self.scripts == ("latin",)

    def public(self) -> dict[str, str | bool]:
        """What the call page needs (``GET /languages``)."""
        return {"code": self.code, "name": self.name, "native_name": self.native, "direction": self.direction,
                "neural_voice": self.piper is not None}  # fmt: skip


_LANGUAGES = (
    Language(
        code="en", name="English", native="English", whisper="en", espeak="en-us", piper="en_US-joe-medium",
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("and but or because since although though if when while which whose the a an to of in "
                         "on at for with from by into than um uh er erm my your our their i"),
        stop_words=words("the and are you your what that this with have did it's i'm i'd that's don't let's of for "
                         "my how about like can would there they be not but today really very good great yes it "
                         "she we're you're doesn't what's where why when which some any much many been has had "
                         "will just"),
        practice_greeting="Hello! Let's practise together. What did you do today?",
        apology="Sorry, something went wrong on my side. Could you say that again?",
        correction_example='Learner: Yesterday I go to the cinema. You: Almost! You\'d say "yesterday I went to the '
                           'cinema". What did you see?',
        correction_cues=("say {}", "saying {}"),
        revisit_greeting="Welcome back! Last time we practised “{phrase}”. Can you use it in a sentence about your "
                         "day?",
    ),
    Language(
        code="es", name="Spanish", native="Español", whisper="es", espeak="es", piper=None,
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("y e o u pero porque que como cuando si el la los las un una de del en con por para mi tu "
                         "su es eh este"),
        stop_words=words("el los las y es qué muy pero cómo hoy yo hiciste hace eso esto también gusta hay estoy "
                         "fue puedes quieres tienes usted tú mí mucho dónde cuándo hola gracias ahora así"),
        practice_greeting="¡Hola! Vamos a practicar juntos. ¿Qué hiciste hoy?",
        apology="Perdona, algo falló por mi parte. ¿Puedes repetirlo?",
        correction_example='Learner: Ayer yo va al cine. You: ¡Casi! Se dice "ayer fui al cine". ¿Qué película '
                           "viste?",
        correction_cues=("dice {}", "decir {}", "dices {}", "decimos {}"),
        revisit_greeting="¡Hola de nuevo! La última vez practicamos «{phrase}». ¿Me cuentas algo de tu día usándolo?",
    ),
    Language(
        code="fr", name="French", native="Français", whisper="fr", espeak="fr-fr", piper=None,
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("et ou mais donc parce que qui quand si le la les un une de des du en avec pour par mon ma "
                         "ton ta son sa est euh"),
        stop_words=words("les et est c'est vous elle nous une des qui pas ne très mais avec pour dans sur ce cette "
                         "ça aujourd'hui fait oui mon ton quoi j'ai qu'est aussi au aux être suis comme alors peux "
                         "bonjour merci tout où parce qu'il n'est"),
        practice_greeting="Bonjour ! Pratiquons ensemble. Qu'est-ce que tu as fait aujourd'hui ?",
        apology="Désolé, j'ai eu un problème. Tu peux répéter ?",
        correction_example='Learner: Hier, j\'ai allé au cinéma. You: Presque ! On dit "je suis allé au cinéma". '
                           "Qu'est-ce que tu as vu ?",
        correction_cues=("dit {}", "dire {}", "dis {}", "disons {}"),
        revisit_greeting="Re-bonjour ! La dernière fois, on a pratiqué « {phrase} ». Tu peux l'utiliser dans une "
                         "phrase sur ta journée ?",
    ),
    Language(
        code="de", name="German", native="Deutsch", whisper="de", espeak="de", piper=None,
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("und oder aber weil dass wenn als der die das den dem ein eine einen zu von mit für auf in "
                         "im ist äh ähm"),
        stop_words=words("der die das und ist ich du nicht ein eine einen mit auf für sehr aber auch heute hast hat "
                         "bin bist sie wir zu den dem im mir dich dir gut nein gemacht schön noch schon oder wenn "
                         "dass gerne mal hallo danke etwas jetzt warum"),
        practice_greeting="Hallo! Lass uns zusammen üben. Was hast du heute gemacht?",
        apology="Entschuldigung, bei mir ist etwas schiefgelaufen. Kannst du das wiederholen?",
        correction_example='Learner: Gestern ich habe ins Kino gegangen. You: Fast! Man sagt "gestern bin ich ins '
                           'Kino gegangen". Welchen Film hast du gesehen?',
        correction_cues=("sagt {}", "sagen {}", "sag {}", "heißt {}"),
        revisit_greeting="Schön, dich wiederzuhören! Letztes Mal haben wir „{phrase}“ geübt. Kannst du es in einem "
                         "Satz über deinen Tag benutzen?",
    ),
    Language(
        code="zh", name="Chinese", native="中文", whisper="zh", espeak="cmn", piper=None,
        scripts=("han",), direction="ltr", enders="。！？" + WESTERN_ENDERS,
        unfinished=frozenset(), stop_words=frozenset(),
        practice_greeting="你好！我们一起练习吧。你今天做了什么？",
        apology="抱歉，我这边出了点问题。你能再说一遍吗？",
        correction_example="Learner: 昨天我去电影院了看电影。 You: 差不多！我们一般说“昨天我去电影院看电影了”。"
                           "你看了什么电影？",
        correction_cues=("说{}", "讲{}"),
        revisit_greeting="欢迎回来！上次我们练习了“{phrase}”。你能用它说一句关于你今天的话吗？",
    ),
    Language(
        code="hi", name="Hindi", native="हिन्दी", whisper="hi", espeak="hi", piper=None,
        scripts=("devanagari",), direction="ltr", enders="।" + WESTERN_ENDERS,  # । the danda, Hindi's full stop
        unfinished=frozenset(), stop_words=frozenset(),
        practice_greeting="नमस्ते! चलिए साथ में अभ्यास करते हैं। आज आपने क्या किया?",
        apology="माफ़ कीजिए, मेरी तरफ़ कुछ गड़बड़ हो गई। क्या आप फिर से कह सकते हैं?",
        correction_example='Learner: कल मैं सिनेमा जाता हूँ। You: लगभग सही! हम कहते हैं "कल मैं सिनेमा गया था"। '
                           "आपने कौन सी फ़िल्म देखी?",
        correction_cues=("कहते हैं {}", "कहेंगे {}", "कहिए {}", "कहें {}", "बोलते हैं {}"),
        revisit_greeting='फिर से स्वागत है! पिछली बार हमने "{phrase}" का अभ्यास किया था। क्या आप इसे अपने दिन के '
                         "बारे में एक वाक्य में बोल सकते हैं?",
    ),
    Language(
        code="ja", name="Japanese", native="日本語", whisper="ja", espeak="ja", piper=None,
        scripts=("kana", "han"), direction="ltr", enders="。！？" + WESTERN_ENDERS,
        unfinished=frozenset(), stop_words=frozenset(),
        practice_greeting="こんにちは！一緒に練習しましょう。今日は何をしましたか？",
        apology="すみません、こちらで問題が起きました。もう一度言ってもらえますか？",
        correction_example="Learner: 昨日、映画館に行きます。 You: おしい！「昨日、映画館に行きました」と言いますよ。"
                           "何を見ましたか？",
        correction_cues=("{}と言", "{}って言", "{}が自然", "{}の方が"),
        revisit_greeting="おかえりなさい！前回は「{phrase}」を練習しましたね。今日のことを話すときに使ってみてくれますか？",
    ),
    Language(
        code="ko", name="Korean", native="한국어", whisper="ko", espeak="ko", piper=None,
        scripts=("hangul",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=frozenset(), stop_words=frozenset(),
        practice_greeting="안녕하세요! 같이 연습해요. 오늘 뭐 했어요?",
        apology="죄송해요, 제 쪽에 문제가 생겼어요. 다시 말씀해 주시겠어요?",
        correction_example='Learner: 어제 영화관에 가요. You: 거의 맞아요! "어제 영화관에 갔어요"라고 해요. 무슨 '
                           "영화를 봤어요?",
        correction_cues=("{}라고", "{}이라고", "{}가 맞", "{}이 맞", "{}가 자연스러", "{}이 자연스러"),
        revisit_greeting='다시 만나서 반가워요! 지난번에 연습한 표현, "{phrase}" 기억나요? '
                         "오늘 있었던 일로 한번 써 볼래요?",
    ),
    Language(
        code="pt", name="Portuguese", native="Português", whisper="pt", espeak="pt-br", piper=None,
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("e ou mas porque que quando se o a os as um uma de do da em com para por meu minha é né"),
        stop_words=words("os é você não um uma muito mas eu meu minha do dos na em isso isto também hoje fez gosta "
                         "gosto bem sim ao são tem foi pode quer seu sua ele ela estou então olá obrigado obrigada "
                         "fazer coisa agora nós"),
        practice_greeting="Olá! Vamos praticar juntos. O que você fez hoje?",
        apology="Desculpa, algo deu errado do meu lado. Pode repetir?",
        correction_example='Learner: Ontem eu vai ao cinema. You: Quase! A gente diz "ontem eu fui ao cinema". Que '
                           "filme você viu?",
        correction_cues=("diz {}", "dizer {}", "dizemos {}", "fala {}", "falar {}", "falamos {}"),
        revisit_greeting="Que bom te ver de novo! Da última vez a gente praticou “{phrase}”. Você consegue usar isso "
                         "numa frase sobre o seu dia?",
    ),
    Language(
        code="ar", name="Arabic", native="العربية", whisper="ar", espeak="ar", piper=None,
        scripts=("arabic",), direction="rtl", enders="؟" + WESTERN_ENDERS,  # ؟ the Arabic question mark
        unfinished=frozenset(), stop_words=frozenset(),
        practice_greeting="مرحبا! لنتدرب معا. ماذا فعلت اليوم؟",
        apology="آسف، حدثت مشكلة من جهتي. هل يمكنك أن تعيد ذلك؟",
        correction_example='Learner: أمس أنا أذهب إلى السينما. You: تقريبا! نقول "ذهبت أمس إلى السينما". ماذا '
                           "شاهدت؟",
        correction_cues=("نقول {}", "يقال {}", "قل {}", "تقول {}"),
        revisit_greeting="أهلا بعودتك! في المرة الماضية تدربنا على «{phrase}». هل تستطيع أن تستخدمها في جملة عن "
                         "يومك؟",
    ),
    Language(
        code="ru", name="Russian", native="Русский", whisper="ru", espeak="ru", piper=None,
        scripts=("cyrillic",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=frozenset(), stop_words=frozenset(),
        practice_greeting="Привет! Давай потренируемся вместе. Что ты сегодня делал?",
        apology="Извини, у меня что-то пошло не так. Можешь повторить?",
        correction_example='Learner: Вчера я иду в кино. You: Почти! Говорят "вчера я ходил в кино". Какой фильм ты '
                           "смотрел?",
        correction_cues=("говорят {}", "говорим {}", "сказать {}", "скажи {}"),
        revisit_greeting="Рад снова тебя слышать! В прошлый раз мы тренировали «{phrase}». Попробуешь сказать так, "
                         "когда будешь рассказывать о своём дне?",
    ),
    Language(
        code="it", name="Italian", native="Italiano", whisper="it", espeak="it", piper=None,
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("e o ma perché che quando se il lo la i gli le un una di del della in con per mio mia è ehm"),
        stop_words=words("gli è che non molto anche oggi hai ho sono ti io cosa come della delle nel nella questo "
                         "questa bene sì fatto piace perché ciao facciamo dove dei alla alle allora davvero grazie "
                         "anch'io c'è qualcosa adesso"),
        practice_greeting="Ciao! Facciamo pratica insieme. Cosa hai fatto oggi?",
        apology="Scusa, qualcosa è andato storto da parte mia. Puoi ripetere?",
        correction_example='Learner: Ieri ho andato al cinema. You: Quasi! Si dice "ieri sono andato al cinema". Che '
                           "film hai visto?",
        correction_cues=("dice {}", "dire {}", "diciamo {}"),
        revisit_greeting="Ciao di nuovo! L'ultima volta abbiamo praticato «{phrase}». Riesci a usarlo in una frase "
                         "sulla tua giornata?",
    ),
    Language(
        code="nl", name="Dutch", native="Nederlands", whisper="nl", espeak="nl", piper=None,
        scripts=("latin",), direction="ltr", enders=WESTERN_ENDERS,
        unfinished=words("en of maar omdat dat als de het een van in op met voor naar mijn is eh uh"),
        stop_words=words("het een van niet ik jij wat dat met op voor zijn maar ook heb hebt heeft vandaag gedaan "
                         "leuk goed mooi naar om hoe wij jullie nog wel kun kunt graag waar mijn jouw bent dank "
                         "bedankt iets nu waarom"),
        practice_greeting="Hallo! Laten we samen oefenen. Wat heb je vandaag gedaan?",
        apology="Sorry, er ging iets mis aan mijn kant. Kun je dat herhalen?",
        correction_example='Learner: Gisteren ik heb naar de bioscoop gegaan. You: Bijna! Je zegt "gisteren ben ik '
                           'naar de bioscoop gegaan". Welke film heb je gezien?',
        correction_cues=("zegt {}", "zeggen {}", "zeg {}"),
        revisit_greeting="Fijn je weer te horen! Vorige keer hebben we “{phrase}” geoefend. Kun je het gebruiken in "
                         "een zin over je dag?",
    ),
)  # fmt: skip

LANGUAGES: dict[str, Language] = {language.code: language for language in _LANGUAGES}
DEFAULT_LANGUAGE = "en"
# Every sentence ender of every language: a reply may switch language (chat follows the person), so the
# splitter knows them all.
ENDERS = "".join(dict.fromkeys(c for language in _LANGUAGES for c in language.enders))
# The language each native script tells apart (kana: Japanese, han alone: Chinese, ...); Latin needs words.
BY_SCRIPT = {language.scripts[0]: code for code, language in LANGUAGES.items() if not language.latin}


def catalogue() -> dict[str, object]:
    """``GET /languages``: the languages a call may use, in the table's order, for the call page's picker."""
    return {"default": DEFAULT_LANGUAGE, "languages": [language.public() for language in LANGUAGES.values()]}
