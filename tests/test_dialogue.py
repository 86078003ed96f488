"""Conversation history and reply text shaping."""

from __future__ import annotations

from server.dialogue.conversation import Conversation
from server.dialogue.modes import PERSONAS
from server.dialogue.text import SentenceSplitter, heard_part, spoken
from server.languages import LANGUAGES


def feed_tokens(text: str) -> list[str]:
    splitter = SentenceSplitter()
    out: list[str] = []
    for i in range(0, len(text), 3):  # tokens of three characters, as a model streams them
        out += splitter.feed(text[i : i + 3])
    rest = splitter.flush()
    return out + ([rest] if rest else [])


def test_sentences_are_cut_as_soon_as_they_end():
    text = "Good answer. You covered hashing, e.g. buckets and collisions. What costs 3.5 ms? Tell me"
    assert feed_tokens(text) == [
        "Good answer.", "You covered hashing, e.g. buckets and collisions.", "What costs 3.5 ms?", "Tell me",
    ]  # fmt: skip


def test_a_long_first_sentence_is_cut_at_a_clause_for_a_faster_start():
    parts = feed_tokens("Well, that is mostly right about the buckets, but you missed the collisions. Next one.")
    assert parts[0].endswith(",") and len(parts[0]) < 60
    assert " ".join(parts).replace(" ,", ",").startswith("Well, that is mostly right")
    assert parts[-1] == "Next one."


def test_cjk_sentences_end_without_spaces():
    assert feed_tokens("你好。我们开始吧！") == ["你好。", "我们开始吧！"]


def test_hindi_sentences_end_at_the_danda():
    text = "कल मैं सिनेमा गया था। आपने कौन सी फ़िल्म देखी? बहुत अच्छा"
    assert feed_tokens(text) == ["कल मैं सिनेमा गया था।", "आपने कौन सी फ़िल्म देखी?", "बहुत अच्छा"]
    splitter = SentenceSplitter()
    assert splitter.feed("नमस्ते।") == ["नमस्ते।"]  # at once: a danda is never inside a word or a number


def test_arabic_sentences_end_at_its_question_mark():
    text = "ماذا فعلت اليوم؟ ذهبت إلى السوق. وأنت؟"
    assert feed_tokens(text) == ["ماذا فعلت اليوم؟", "ذهبت إلى السوق.", "وأنت؟"]
    splitter = SentenceSplitter()
    assert splitter.feed("كيف حالك؟") == ["كيف حالك؟"]


def test_spoken_form_drops_markdown_and_reads_symbols():
    assert spoken("**Great**: lookups are O(1) on average 🎉", "en") == "Great: lookups are O of 1 on average"
    assert spoken("- first point\n- second 好的 point", "fr") == "first point second point"
    assert spoken("好的，我们开始。", "zh") == "好的，我们开始。"


def test_spoken_form_says_complexities_and_symbols_as_words_and_skips_code():
    assert spoken("Sorting is O(n log n), worst O(n^2).") == "Sorting is O of n log n, worst O of n squared."
    assert spoken("If a == b && c != d, e.g. 50% of n+1") == (
        "If a equals b and c is not equal to d, for example 50 percent of n plus 1"
    )
    assert spoken("Use a hash_map here.") == "Use a hash map here."
    assert spoken("Like this: ```python\nx = {}\n``` Done.") == "Like this: Done."
    assert spoken("def lookup(key):") == "" and spoken("return table[key];") == ""
    assert spoken("For example: a hash map.") == "For example: a hash map."
    assert spoken("a == b", "fr") == "a == b"  # other languages keep their symbols


def test_heard_part_counts_played_words():
    assert heard_part("one two three four", 0.5) == "one two"
    assert heard_part("one two three four", 0.0) == ""
    assert heard_part("one two three four", 1.0) == "one two three four"


def test_history_marks_interruptions_and_keeps_a_stable_window():
    conv = Conversation("system", window=6, keep=4)
    conv.add_user("hi")
    conv.add_assistant("Hello, how can I", interrupted=True)
    conv.add_user("sorry, go on")
    messages = conv.messages()
    assert messages[0] == {"role": "system", "content": "system"}
    assert messages[2] == {"role": "assistant", "content": "Hello, how can I"}
    assert messages[3] == {"role": "user", "content": "[INTERRUPTED] sorry, go on"}
    assert conv.history[1].interrupted
    conv.add_assistant("Well", interrupted=True)  # too little to keep, but the next message is still marked
    conv.add_user("ok")
    assert conv.messages()[-2:] == [
        {"role": "user", "content": "[INTERRUPTED] sorry, go on"},
        {"role": "user", "content": "[INTERRUPTED] ok"},
    ]
    for i in range(4):
        conv.add_assistant(f"answer {i}")
        conv.add_user(f"question {i}")
    history = conv.messages()[1:]
    assert 3 <= len(history) <= 6 and history[0]["role"] == "user" and history[-1]["content"] == "question 3"


def test_every_mode_speaks_every_language():
    for persona in PERSONAS.values():
        for code, language in LANGUAGES.items():
            assert language.name in persona.system_prompt(code)
