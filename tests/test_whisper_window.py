"""The short Whisper encoder window: its size, and the guards against the repeats it can cause."""

from __future__ import annotations

from server.providers.local.whisper import drop_repeats, encoder_frames, max_tokens


def test_window_is_the_utterance_plus_two_seconds_between_5_and_30_s():
    assert encoder_frames(100) == 500  # 1 s of speech: the 5 s minimum
    assert encoder_frames(700) == 900  # 7 s: plus 2 s
    assert encoder_frames(2900) == 3000  # never past Whisper's 30 s


def test_window_lengths_come_in_half_second_steps_so_the_encoder_sees_few_shapes():
    # Each new input shape costs oneDNN a cached primitive (~0.6 MB): exact lengths grew the server per turn.
    assert encoder_frames(701) == 950 and encoder_frames(749) == 950 and encoder_frames(750) == 950
    lengths = {encoder_frames(frames) for frames in range(0, 4000)}
    assert len(lengths) == 51 and all(n % 50 == 0 for n in lengths)


def test_repeated_sentences_are_cut():
    text = "These couples may choose an adoption plan. These couples may choose an adoption plan. These couples"
    assert drop_repeats(text) == "These couples may choose an adoption plan."
    assert drop_repeats("Yes. Yes, I think so.") == "Yes. Yes, I think so."
    assert drop_repeats("你好。你好。") == "你好。"


def test_a_word_stuck_in_a_loop_is_said_once():
    assert drop_repeats("それは素晴らしい 牛奶 牛奶 牛奶 牛奶 牛奶 牛奶") == "それは素晴らしい 牛奶"
    assert drop_repeats("それは牛奶牛奶牛奶牛奶牛奶です") == "それは牛奶です"
    assert drop_repeats("I said the the the the the") == "I said the"
    assert drop_repeats("No no no, not that.") == "No no no, not that."  # three is how people talk
    assert drop_repeats("nothing nothing nothing nothingness") == "nothing nothing nothing nothingness"


def test_token_cap_follows_the_length_of_speech():
    assert max_tokens(2.0, "en") < max_tokens(2.0, "ja") <= 160
    assert max_tokens(60.0, "en") == 160
