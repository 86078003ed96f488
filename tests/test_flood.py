"""One call cannot starve the others: its data-channel messages are rate-limited (it is told, and goes on), a
superseded reply costs no model time it has not started, and only the person speaking or typing keeps a call
from ending as idle."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from server.config import Settings
from server.message_rate import MessageRate
from server.providers.base import ChatMessage, Providers
from server.providers.local.threads import stream_from_thread
from server.providers.openai_compat import Endpoint, OpenAIChat, OpenAISTT, OpenAITTS
from tests.fake_openai import KEY, FakeOpenAI
from tests.fakes import FakeSTT, FakeTTS, StatelessLLM
from tests.helpers import is_, until
from tests.scripted import ScriptedCall

FLOOD_PER_SECOND = 200
FLOOD_SECONDS = 5.0


# -- the rate limit --------------------------------------------------------------------------------------------
def test_a_burst_is_let_through_then_the_average_rate():
    rate = MessageRate(per_second=5, burst=10)
    assert [rate.allow(0.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert rate.allow(0.1) is False  # half a token so far
    assert rate.allow(0.2) is True  # one more a fifth of a second later
    through = sum(rate.allow(0.2 + (i + 1) / 200) for i in range(200))  # a second of 200 a second
    assert through in (4, 5)
    assert rate.dropped == 2 + 1 + 200 - through


def test_the_client_is_told_at_most_once_a_second():
    rate = MessageRate(per_second=5, burst=10)
    assert [rate.should_tell(t) for t in (0.0, 0.5, 0.99, 1.0, 1.5, 2.1)] == [True, False, False, True, False, True]


def remote_providers(fake: FakeOpenAI) -> Providers:
    def endpoint(model: str) -> Endpoint:
        return Endpoint(model=model, base_url=fake.base_url, api_key=KEY)

    return Providers(
        OpenAISTT(endpoint("whisper-1")), OpenAIChat(endpoint("gpt-4o-mini")), OpenAITTS(endpoint("gpt-4o-mini-tts"))
    )


async def test_a_flooding_call_is_rate_limited_goes_on_and_does_not_starve_another(start_server, call_client):
    fake = await FakeOpenAI(reply="Sure. Here is a short answer.").start()
    try:
        settings = Settings(ice_loopback=True, hangover_ms=500, stt="openai", llm="openai", tts="openai")
        url = await start_server(remote_providers(fake), settings)
        flooder, other = await call_client(url, mode="chat"), await call_client(url, mode="chat")
        await asyncio.gather(flooder.wait_listening(30), other.wait_listening(30))
        flood_started = time.monotonic()

        async def flood() -> int:
            # 200 messages a second, on schedule: a late loop catches up with a burst, as a flooding client would.
            sent = 0
            while (elapsed := time.monotonic() - flood_started) < FLOOD_SECONDS:
                while sent < elapsed * FLOOD_PER_SECOND:
                    kind = sent % 4
                    if kind == 3:
                        flooder.send({"type": "scorecard"})  # control messages are counted too
                    else:
                        flooder.send({"type": "text", "text": f"flood {sent}"})
                    sent += 1
                await asyncio.sleep(0.005)
            return sent

        flooding = asyncio.ensure_future(flood())
        await asyncio.sleep(1.5)
        asked = time.monotonic()
        other.send({"type": "text", "text": "what is a thread?"})
        _, said = await other.wait_for(is_("transcript", role="assistant", interrupted=False), 15, asked)
        answered = time.monotonic()
        sent = await flooding
        assert sent >= FLOOD_PER_SECOND * FLOOD_SECONDS * 0.95
        print(f"the other call was answered {answered - asked:.2f} s after it asked, during the flood")
        assert said["text"] == "Sure. Here is a short answer."
        assert other.recording.first_loud_after(asked) is not None  # and heard
        assert [e for t, e in other.events if e["type"] == "error"] == []

        # The flooder was told (about once a second, not once a message) and its call goes on. (On a busy machine
        # its messages may still be arriving: wait until no error has come for 1.5 s, and the bucket has filled.)
        def limited() -> list[float]:
            return [t for t, e in flooder.events if t >= flood_started and is_("error", code="rate_limited")(e)]

        await until(lambda: time.monotonic() - limited()[-1] > 1.5, 30)
        told = limited()
        assert 3 <= len(told) <= told[-1] - flood_started + 2, told
        assert "at most 5 a second" in flooder.find(is_("error", code="rate_limited"), flood_started)[1]["message"]
        after = time.monotonic()
        flooder.send({"type": "text", "text": "sorry about that"})
        heard_t, _ = await flooder.wait_for(is_("transcript", role="user", text="sorry about that"), 10, after)
        await flooder.wait_for(is_("transcript", role="assistant", interrupted=False), 10, heard_t)
        assert not [e for t, e in flooder.events if e["type"] == "ended"]
        # Of the 1,000 messages, only those within the limit started a reply: the model was asked a few dozen times.
        last_words = [c["messages"][-1]["content"].removeprefix("[INTERRUPTED] ") for c in fake.seen.chats]
        flood_chats = [words for words in last_words if words.startswith("flood")]
        assert len(flood_chats) <= settings.message_burst + FLOOD_SECONDS * settings.messages_per_second + 2
    finally:
        await fake.close()


# -- superseded replies and the shared model threads -----------------------------------------------------------
class ThreadedLLM(StatelessLLM):
    """A chat model on one shared worker thread, as the embedded one runs: it counts the prompts it really
    starts on (not the ones it was handed), and takes ``seconds_per_token`` of the thread's time per token."""

    def __init__(self, executor: ThreadPoolExecutor, reply: str = "Fine. Let us go on.", seconds_per_token=0.01):
        self._executor = executor
        self.reply = reply
        self.seconds_per_token = seconds_per_token
        self.handed: list[str] = []  # the last message of each stream() call
        self.started: list[str] = []  # ... of each one the worker thread began
        self.tokens_made = 0

    def _generate(self, messages: Sequence[ChatMessage], stop: threading.Event) -> Iterator[str]:
        self.started.append(messages[-1]["content"])
        for word in self.reply.split(" "):
            if stop.is_set():
                return
            time.sleep(self.seconds_per_token)
            self.tokens_made += 1
            yield word + " "

    async def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        self.handed.append(messages[-1]["content"])
        async for delta in stream_from_thread(self._executor, lambda stop: self._generate(messages, stop)):
            yield delta


@pytest.fixture
def model_thread() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(1, thread_name_prefix="test-model")
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def busy(executor: ThreadPoolExecutor) -> threading.Event:
    """Occupies the model thread (another call's long reply) until the returned event is set."""
    release = threading.Event()
    executor.submit(release.wait, 10)
    return release


async def test_a_stream_cancelled_while_queued_never_reaches_the_model(model_thread):
    started: list[int] = []

    def produce(stop: threading.Event) -> Iterator[int]:
        started.append(1)
        yield 1

    release = busy(model_thread)

    async def consume() -> list[int]:
        return [item async for item in stream_from_thread(model_thread, produce)]

    waiting = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.wait([waiting])
    release.set()
    # The thread is free for the next job at once, and the cancelled one never ran.
    assert await asyncio.wrap_future(model_thread.submit(lambda: "next")) == "next"
    assert started == []


async def test_a_stream_in_progress_stops_at_its_next_item(model_thread):
    made: list[int] = []

    def produce(stop: threading.Event) -> Iterator[int]:
        for i in range(100):
            if stop.is_set():
                return
            time.sleep(0.01)
            made.append(i)
            yield i

    async def first_item() -> int:
        async for item in stream_from_thread(model_thread, produce):
            return item
        raise AssertionError("nothing came")

    assert await first_item() == 0
    await asyncio.wrap_future(model_thread.submit(lambda: None))  # the worker is free again
    assert len(made) <= 3  # the item in hand and, at most, the one being made when the stop came


async def test_a_reply_superseded_while_its_model_job_waits_costs_no_model_time(model_thread):
    llm = ThreadedLLM(model_thread)
    scripted = ScriptedCall(Providers(FakeSTT(), llm, FakeTTS()), mode="chat")  # type: ignore[arg-type]
    await scripted.connect()
    release = busy(model_thread)  # another call's reply has the model
    for text in ("first question", "no, second question", "third question, really"):
        scripted.call._on_message(json.dumps({"type": "text", "text": text}))
        await scripted.settle(lambda t=text: bool(llm.handed) and t in llm.handed[-1])
    assert len(llm.handed) == 3 and llm.started == []
    release.set()
    await scripted.play_until(lambda: scripted.kinds()[-1:] == ["state:listening"] and bool(llm.started))
    # The model worked on the last question only; the first two were dropped from its queue.
    assert len(llm.started) == 1 and "third question, really" in llm.started[0]
    said = [e["text"] for e in scripted.events if is_("transcript", role="assistant", interrupted=False)(e)]
    assert said[-1] == "Fine. Let us go on."
    await scripted.close()


async def test_a_reply_superseded_while_the_model_works_on_it_stops_at_the_next_token(model_thread):
    llm = ThreadedLLM(model_thread, reply=" ".join(["word"] * 200) + ".", seconds_per_token=0.02)
    scripted = ScriptedCall(Providers(FakeSTT(), llm, FakeTTS()), mode="chat")  # type: ignore[arg-type]
    await scripted.connect()
    scripted.call._on_message(json.dumps({"type": "text", "text": "tell me a long story"}))
    await until(lambda: llm.tokens_made >= 3)
    scripted.call._on_message(json.dumps({"type": "text", "text": "stop, something else"}))
    await until(lambda: len(llm.started) == 2)
    # The first reply's generation stopped within a token of being cut: well short of its 200 tokens.
    assert llm.tokens_made < 20, llm.tokens_made
    await scripted.close()


async def test_replies_cut_in_quick_succession_never_run_side_by_side():
    running: list[int] = []
    most = 0

    class SlowToStop(FakeTTS):
        """Speech whose cut takes a moment (a remote stream being closed): replies could overlap there."""

        async def synthesize(self, text, style):  # type: ignore[no-untyped-def]
            nonlocal most
            running.append(1)
            most = max(most, len(running))
            try:
                async for chunk in super().synthesize(text, style):
                    yield chunk
            finally:
                await asyncio.shield(asyncio.sleep(0.02))
                running.pop()

    scripted = ScriptedCall(Providers(FakeSTT(), FakeLLMForFlood(), SlowToStop()), mode="chat")  # type: ignore[arg-type]
    await scripted.connect()
    for i in range(8):
        scripted.call._on_message(json.dumps({"type": "text", "text": f"question {i}"}))
        await asyncio.sleep(0.005)
    await scripted.play_until(lambda: "question 7" in json.dumps(scripted.events[-6:]) and not running)
    assert most == 1
    await scripted.close()


class FakeLLMForFlood(StatelessLLM):
    async def stream(self, messages, *, temperature, max_tokens):  # type: ignore[no-untyped-def]
        yield f"You said {messages[-1]['content'].removeprefix('[INTERRUPTED] ')}."


# -- the idle timer --------------------------------------------------------------------------------------------
async def test_control_messages_do_not_keep_a_call_alive_but_typing_does(model_thread):
    settings = Settings(hangover_ms=500, idle_s=1.0)
    typing = ScriptedCall(Providers(FakeSTT(), ThreadedLLM(model_thread), FakeTTS()), "chat", settings)  # type: ignore[arg-type]
    idle = ScriptedCall(Providers(FakeSTT(), ThreadedLLM(model_thread), FakeTTS()), "chat", settings)  # type: ignore[arg-type]
    await typing.connect()
    await idle.connect()
    control = ['{"type": "scorecard"}', '{"type": "mode", "mode": "chat"}', '{"type": "reset"}', "not json"]
    started, ended_after = time.monotonic(), None
    for i in range(10):  # 2.5 s, under the rate limit: every message is handled
        if not idle.call.closed.is_set():
            idle.call._on_message(control[i % len(control)])
        elif ended_after is None:
            ended_after = time.monotonic() - started
        typing.call._on_message(json.dumps({"type": "text", "text": f"still here {i}"}))
        await asyncio.sleep(0.25)
    assert [e["reason"] for e in idle.events if e["type"] == "ended"] == ["idle"]
    assert ended_after is not None and ended_after < 2.0  # about 1 s after the call began, control messages or not
    assert not typing.call.closed.is_set() and not [e for e in typing.events if e["type"] == "ended"]
    assert not [e for e in idle.events if is_("error", code="rate_limited")(e)]
    await typing.close()
    await idle.close()


async def test_a_waiting_reply_cut_twice_still_waits_for_the_one_before_it():
    scripted = ScriptedCall(Providers(FakeSTT(), FakeLLMForFlood(), FakeTTS()), mode="chat")  # type: ignore[arg-type]
    await scripted.connect()
    turns = scripted.call.turn_taker
    log: list[str] = []

    async def slow_to_stop(handle) -> None:  # type: ignore[no-untyped-def]
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.shield(asyncio.sleep(0.05))  # its cut takes a moment (recording what was heard, say)
            log.append("first over")

    async def second(handle) -> None:  # type: ignore[no-untyped-def]
        log.append("second started")

    async def third(handle) -> None:  # type: ignore[no-untyped-def]
        log.append("third started")

    turns.say(slow_to_stop)
    await asyncio.sleep(0.01)
    turns.barge_in()  # the first is cut, and takes 50 ms to stop
    waiting = turns.say(second)
    turns.barge_in()  # the second, still waiting, is cut ...
    await asyncio.sleep(0)
    waiting.cancel()  # ... and cut again (speech, then typed text)
    last = turns.say(third)
    await last.over()
    assert log == ["first over", "third started"]
    await scripted.close()


@pytest.mark.real_models
async def test_on_the_embedded_model_a_superseded_job_is_dropped_and_a_long_prompt_stops_within_a_chunk():
    from server.providers.local.llama import PROMPT_CHUNK, LlamaChat

    llm = LlamaChat(threads=2, context=4096)
    system: ChatMessage = {"role": "system", "content": "You are a friendly tutor."}

    async def first_token(words: str) -> str:
        async for delta in llm.stream([system, {"role": "user", "content": words}], temperature=0.2, max_tokens=2):
            return delta
        return ""

    # Queued behind another call's work, then superseded: the model never reads it.
    release = busy(llm._executor)
    dropped = asyncio.ensure_future(first_token("Tell me about zebras and their stripes."))
    await asyncio.sleep(0.05)
    dropped.cancel()
    await asyncio.wait([dropped])
    release.set()
    assert await first_token("Say hello.")
    assert "zebras" not in llm.cached_text()

    # Superseded while the model reads its long prompt: the reading stops within a chunk.
    long_words = "我最近在学习中文，每天都会读一些新闻和小说。有时候我觉得语法很难，但是老师说只要坚持练习。" * 20
    reading = asyncio.ensure_future(first_token(long_words))
    await until(lambda: llm._llm.n_tokens > 2 * PROMPT_CHUNK, 120)  # a few chunks in
    reading.cancel()
    await asyncio.wait([reading])
    stopped_at = llm._llm.n_tokens
    await asyncio.wrap_future(llm._executor.submit(lambda: None))  # the model thread is free again
    full = len(llm._tokens([system, {"role": "user", "content": long_words}]))
    assert llm._llm.n_tokens <= stopped_at + PROMPT_CHUNK < full, (stopped_at, llm._llm.n_tokens, full)
