"""Interview quality on scripted answers: does the app's verdict agree with a human grader's key points, and
does every reply give feedback before the next question, with the embedded model phrasing the feedback?

    .venv/bin/python -m bench.interview [--no-model] [--model-judge] [--limit N]

Figures printed:
- judge: agreement of the offline judge with the key points each scripted answer covers (per key point, and
  per verdict), on the set the phrase lists were tuned on and on a held-out set that was never used to tune them;
- replies (embedded Qwen2.5-Coder-1.5B): share of replies whose text reads verdict opener -> feedback -> next
  question; share whose feedback the model wrote (the rest fell back to the app's own sentence); the model's raw
  praise on answers that were not correct, and what was left of it after the filter; whether the feedback
  names a key point the answer missed; generation time per reply;
- with --model-judge: the same 1.5B model asked to judge the key points itself (JSON), for comparison.

The OpenAI path (a remote model as judge and phraser) runs the same code with another ChatModel; it is not
measured here, since no endpoint is reachable from this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator, Sequence

from bench.interview_answers import ANSWERS, HELD_OUT, Scripted
from server.dialogue.bank import default_bank
from server.dialogue.interview import OPENERS, STRONG_PRAISE, Interview
from server.dialogue.judge import Judge, Verdict, offline_coverage, remote_coverage, says_dont_know, verdict_for
from server.providers.base import ChatMessage, ChatModel
from tests.interview_script import PRAISE, read_reply

BANK = default_bank()


def expected(s: Scripted) -> tuple[set[int], Verdict]:
    q = BANK.by_id(s.question)
    return set(s.covered), verdict_for(len(s.covered), len(q.key_points), s.kind == "idk")


def agreement(answers: Sequence[Scripted], coverage: list[tuple[int, ...] | None]) -> tuple[float, float, int]:
    """(key point agreement, verdict agreement, answers the judge gave no answer for)."""
    points = total = verdicts = failed = 0
    for s, covered in zip(answers, coverage, strict=True):
        q = BANK.by_id(s.question)
        want, verdict = expected(s)
        if covered is None:
            failed += 1
            covered = ()
        points += sum((i in covered) == (i in want) for i in range(len(q.key_points)))
        total += len(q.key_points)
        verdicts += verdict_for(len(covered), len(q.key_points), says_dont_know(s.answer)) is verdict
    return points / total, verdicts / len(answers), failed


def print_agreement(label: str, answers: Sequence[Scripted], coverage: list[tuple[int, ...] | None]) -> None:
    points, verdicts, failed = agreement(answers, coverage)
    extra = f", {failed} unparseable" if failed else ""
    print(f"  {label:<34} {len(answers):>3} answers  key points {points:6.1%}  verdicts {verdicts:6.1%}{extra}")


class Recorder:
    """Wraps a ChatModel to keep the raw text of each reply, before the interview's filter."""

    reads_ahead = False  # scripted text answers: nothing is heard ahead

    def __init__(self, llm: ChatModel) -> None:
        self.llm = llm
        self.raw: list[str] = []

    async def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int
    ) -> AsyncIterator[str]:
        self.raw.append("")
        async for delta in self.llm.stream(messages, temperature=temperature, max_tokens=max_tokens):
            self.raw[-1] += delta
            yield delta

    async def warm(self, messages: Sequence[ChatMessage], *, opening: bool = False) -> None:
        await self.llm.warm(messages)

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        await self.llm.prefill(messages)


async def replies(llm: ChatModel, answers: Sequence[Scripted]) -> None:
    recorder = Recorder(llm)
    ordered = written = names_missed = with_missed = 0
    # (raw, after the filter, answers) for wrong answers (any praise word) and partly right ones (strong praise:
    # "you have the buckets right" is fair there, "excellent" is not).
    praise = {Verdict.WRONG: [0, 0, 0], Verdict.PARTLY: [0, 0, 0]}
    seconds: list[float] = []
    for n, s in enumerate(answers):
        interview = Interview(BANK, Judge(), random.Random(n))
        question = BANK.by_id(s.question)
        interview._ask(question)
        await recorder.warm(interview.prompt())  # as the session does while the greeting plays
        plan = await interview.plan(s.answer)
        before = len(recorder.raw)
        started = time.monotonic()
        text = "".join([d async for d in plan.deltas(recorder, 0.7, 120)]).strip()
        seconds.append(time.monotonic() - started)
        raw = recorder.raw[-1] if len(recorder.raw) > before else ""
        verdict = plan.judgement.verdict if plan.judgement else None
        reply = read_reply(text)
        first = reply.opener in OPENERS.get(verdict, ()) and reply.feedback and reply.question is not None
        ordered += bool(first and text.index(reply.feedback) < text.rindex(reply.question.text))
        written += plan.model_sentences > 0
        if verdict in praise:
            words = PRAISE if verdict is Verdict.WRONG else STRONG_PRAISE
            counts = praise[verdict]
            counts[0] += bool(words.search(raw))
            counts[1] += bool(words.search(reply.feedback))
            counts[2] += 1
        missed = set(range(len(question.key_points))) - set(plan.judgement.covered if plan.judgement else ())
        if missed and raw:
            with_missed += 1
            names_missed += bool(set(offline_coverage(question, reply.feedback)) & missed)
        print(f"    [{s.kind:>7} -> {verdict}] {text}", flush=True)
    total = len(answers)
    print(f"  feedback first (opener, feedback, then the next question): {ordered}/{total} = {ordered / total:.0%}")
    print(f"  feedback written by the model (not the app's fallback):     {written}/{total} = {written / total:.0%}")
    for verdict, (raw_n, after_n, n) in praise.items():
        kind = "any praise" if verdict is Verdict.WRONG else "strong praise"
        print(f"  {kind} on {verdict.value} answers: in the model's text {raw_n}/{n}, in what was said {after_n}/{n}")
    print(f"  model feedback that names a missed key point:              {names_missed}/{with_missed}")
    print(f"  reply generation p50 {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s (2 CPU threads)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-model", action="store_true", help="only the offline judge")
    parser.add_argument("--model-judge", action="store_true", help="also ask the 1.5B model to judge (JSON)")
    parser.add_argument("--no-replies", action="store_true", help="skip the replies with the embedded model")
    parser.add_argument("--limit", type=int, default=0, help="replies from at most N answers")
    args = parser.parse_args()
    both = (*ANSWERS, *HELD_OUT)
    kinds = {k: sum(s.kind == k for s in both) for k in ("correct", "partial", "wrong", "idk")}
    topics = len({BANK.by_id(s.question).topic for s in both})
    print(f"scripted answers: {len(both)} ({kinds}) over {topics} topics")
    print("offline judge vs the human grader's key points:")
    for label, answers in (("tuning set", ANSWERS), ("held-out set", HELD_OUT), ("all", both)):
        print_agreement(label, answers, [offline_coverage(BANK.by_id(s.question), s.answer) for s in answers])
    if args.no_model:
        return
    from server.providers.local.llama import LlamaChat

    llm = LlamaChat()
    chosen = both[: args.limit] if args.limit else both
    if not args.no_replies:
        print(f"replies with the embedded model ({len(chosen)} answers):", flush=True)
        await replies(llm, chosen)
    if args.model_judge:
        coverage = [await remote_coverage(llm, BANK.by_id(s.question), s.answer, 60.0) for s in both]
        print("the 1.5B model as judge (asked for JSON):")
        print_agreement("all", both, coverage)


if __name__ == "__main__":
    asyncio.run(main())
