"""The history fits the chat model's context: trimmed by tokens as well as messages, so long typed messages (2,000
characters of Chinese or Japanese) never make later turns fail."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from server.config import Settings
from server.dialogue.conversation import MESSAGE_OVERHEAD, Conversation, estimate_tokens
from server.dialogue.modes import PERSONAS
from server.providers.base import ChatMessage, ProviderError, Providers
from tests.fakes import FakeSTT, FakeTTS, StatelessLLM
from tests.scripted import ScriptedCall

ZH = "我最近在学习中文，每天都会读一些新闻和小说。有时候我觉得语法很难，但是老师说只要坚持练习，就一定会进步。"
JA = "最近、日本語を勉強しています。毎日ニュースを読んだり、アニメを見たりしていますが、敬語はまだ難しいと感じます。"
LONG_ZH, LONG_JA = (ZH * 100)[:2000], (JA * 100)[:2000]  # the most a typed message may hold
REPLY_CAP = 100  # the chat persona's reply cap on the embedded model
CONTEXT = 4096


def prompt_tokens(messages: Sequence[ChatMessage], count: Callable[[str], int]) -> int:
    return sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages)


def test_the_estimate_counts_a_cjk_character_as_a_token_and_other_text_by_three():
    assert estimate_tokens("你好吗") == 3 and estimate_tokens("ひらがなカタカナ") == 8 and estimate_tokens("안녕") == 2
    assert estimate_tokens("hello there") == 4 and estimate_tokens("") == 0


def test_long_cjk_messages_are_trimmed_oldest_first_and_the_next_turn_fits():
    budget = CONTEXT - REPLY_CAP - 24
    conversation = Conversation("You are a friendly tutor.", budget=budget)
    for text in (LONG_ZH, LONG_JA, LONG_ZH, LONG_JA, "谢谢！那我们继续吧。"):
        prompt = conversation.with_user(text)
        assert prompt_tokens(prompt, estimate_tokens) <= budget
        assert prompt[-1]["content"] == text  # the new message whole
        assert prompt[1]["role"] == "user"  # the template wants the person first after the system prompt
        conversation.add_user(text)
        conversation.add_assistant("好的，我明白了。" * 10)
    assert conversation.messages()[0]["content"] == "You are a friendly tutor."


def test_a_trim_goes_well_below_the_budget_so_the_cached_prefix_lasts_several_turns():
    conversation = Conversation("System.", budget=3000)
    prefixes = []
    for turn in range(12):
        text = LONG_ZH[:600] if turn % 3 == 0 else "短い質問です。"
        prompt = conversation.with_user(text)
        prefixes.append(json.dumps(prompt[:2], ensure_ascii=False))
        conversation.add_user(text)
        conversation.add_assistant("はい、そうですね。")
    trims = sum(a != b for a, b in zip(prefixes, prefixes[1:], strict=False))
    assert 1 <= trims <= 3, trims  # ~5,000 estimated tokens over 12 turns: a trim every few turns, not every turn


def test_a_message_over_the_whole_budget_keeps_its_beginning():
    conversation = Conversation("System.", budget=500)
    prompt = conversation.with_user(LONG_ZH)
    assert prompt_tokens(prompt, estimate_tokens) <= 500
    assert LONG_ZH.startswith(prompt[-1]["content"]) and len(prompt[-1]["content"]) > 300


class ContextLLM(StatelessLLM):
    """Fails as a model with a ``context`` of tokens does when the prompt and the reply's cap do not fit it."""

    def __init__(self, context: int, count: Callable[[str], int] = estimate_tokens) -> None:
        self.context = context
        self.count = count
        self.prompts: list[int] = []

    def count_tokens(self, text: str) -> int:
        return self.count(text)

    async def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        tokens = prompt_tokens(messages, self.count) + 3  # "<|im_start|>assistant\n"
        self.prompts.append(tokens)
        if tokens + max_tokens > self.context:
            raise ProviderError("the language model failed")  # llama.cpp: "Requested tokens exceed context window"
        yield "好的。"


async def typed_turns(llm: ContextLLM, texts: Sequence[str], settings: Settings) -> list[dict]:
    scripted = ScriptedCall(Providers(FakeSTT(), llm, FakeTTS()), mode="chat", settings=settings)  # type: ignore[arg-type]
    await scripted.connect()
    for text in texts:
        since = len(scripted.events)
        scripted.call._on_message(json.dumps({"type": "text", "text": text}))
        await scripted.play_until(lambda s=since: "state:listening" in scripted.kinds(s)[1:])
    await scripted.close()
    return scripted.events


async def test_long_typed_cjk_messages_never_make_later_turns_fail():
    llm = ContextLLM(CONTEXT)
    texts = [LONG_ZH, LONG_JA, LONG_ZH, LONG_JA, "谢谢！那我们继续吧。"]
    events = await typed_turns(llm, texts, Settings(hangover_ms=500, llm_context=CONTEXT))
    assert [e for e in events if e["type"] == "error"] == []
    said = [e["text"] for e in events if e["type"] == "transcript" and e["role"] == "assistant"]
    assert said[1:] == ["好的。"] * 5  # (after the greeting)
    assert len(llm.prompts) == 5 and max(llm.prompts) <= CONTEXT - REPLY_CAP
    assert sum(llm.prompts[:4]) > CONTEXT  # without trimming, the fourth turn would have been over


@pytest.mark.real_models
async def test_the_prompt_fits_the_embedded_context_by_its_real_tokenizer():
    """The embedded model's tokenizer (its vocabulary only: no weights are loaded) counts the prompts; each rendered
    with the model's own chat template fits its context with the reply's cap."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from server.providers.local import weights

    vocab = Llama(model_path=str(weights.ensure(weights.QWEN_CODER_1_5B)), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False, special=False))

    render = Jinja2ChatFormatter(
        template=vocab.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token=""
    )

    def rendered_tokens(messages: Sequence[ChatMessage]) -> int:
        prompt = render(messages=list(messages)).prompt  # with the reply's opening, as generation sees it
        return len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))

    settings = Settings(hangover_ms=500, llm_context=CONTEXT)
    llm = ContextLLM(CONTEXT, count)
    texts = [LONG_ZH, LONG_JA, LONG_ZH, LONG_JA, LONG_ZH, "谢谢！那我们继续吧。"]
    scripted = ScriptedCall(Providers(FakeSTT(), llm, FakeTTS()), mode="chat", settings=settings)  # type: ignore[arg-type]
    conversation = scripted.call.responder.conversation
    sizes = []
    for text in texts:
        sizes.append(rendered_tokens(conversation.with_user(text)))
        conversation.add_user(text)
        conversation.add_assistant("好的，我明白了，我们继续练习吧。")
    assert count(LONG_ZH) > 1000 and count(LONG_JA) > 1000  # 1,155 and 1,201 here
    assert max(sizes) + min(PERSONAS["chat"].max_tokens, settings.llm_max_tokens) <= CONTEXT, sizes
    assert sum(count(t) for t in texts) > CONTEXT  # untrimmed, the history would not fit


@pytest.mark.real_models
@pytest.mark.timeout(1800)  # ~6,000 tokens read on 2 shared cores: minutes
async def test_long_typed_cjk_messages_on_the_embedded_model_with_its_real_context():
    """Qwen on llama.cpp with its 4,096 tokens: four typed messages of 2,000 characters (~4,700 tokens together),
    then a short one; every turn is answered. (Replies capped at a few tokens: the prompts are what is tested.)"""
    from server.providers.local.llama import LlamaChat

    llm = LlamaChat(threads=2, context=CONTEXT)
    settings = Settings(hangover_ms=500, llm_context=CONTEXT, llm_max_tokens=8)
    scripted = ScriptedCall(Providers(FakeSTT(), llm, FakeTTS()), mode="chat", settings=settings)  # type: ignore[arg-type]
    await scripted.connect()
    for text in (LONG_ZH, LONG_JA, LONG_ZH, LONG_JA, "谢谢！那我们继续吧。"):
        since = len(scripted.events)
        scripted.call._on_message(json.dumps({"type": "text", "text": text}))
        deadline = time.monotonic() + 600  # the model reads ~1,200 new tokens a turn: minutes on a busy machine
        while "state:listening" not in scripted.kinds(since):
            assert time.monotonic() < deadline, scripted.kinds(since)
            scripted.frame()
            await asyncio.sleep(0.01)
        assert [e for e in scripted.events[since:] if e["type"] == "error"] == [], text[:20]
        print(f"{len(text)} characters answered; the model's cache holds {llm._llm.n_tokens} tokens", flush=True)
    said = [e for e in scripted.events if e["type"] == "transcript" and e["role"] == "assistant"]
    assert len(said) == 1 + 5 and all(e["text"] for e in said)
    await scripted.close()
