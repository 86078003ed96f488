"""A person's sessions to take away: JSON (the API's own shape) and Markdown (to read, or paste into notes)."""

from __future__ import annotations

import json
from typing import Any

LATENCY_NAMES = {"stt_ms": "speech to text", "llm_first_token_ms": "first token", "response_ms": "response"}


def filename(session_id: str | None) -> str:
    return f"parley-session-{session_id}" if session_id else "parley-history"


def to_json(sessions: list[dict[str, Any]]) -> str:
    return json.dumps({"sessions": sessions}, ensure_ascii=False, indent=2)


def to_markdown(sessions: list[dict[str, Any]]) -> str:
    parts = ["# Parley practice history", ""] if len(sessions) != 1 else []
    for session in sessions:
        parts += _session(session)
    return "\n".join(parts).rstrip() + "\n"


def _session(s: dict[str, Any]) -> list[str]:
    ended = f", ended {s['ended_at']} ({s['end_reason']})" if s.get("ended_at") else ""
    lines = [f"## {s['mode'].capitalize()} practice in {s['language']}, {s['started_at']}", "",
             f"Session `{s['id']}`{ended}.", ""]  # fmt: skip
    if s.get("turns"):
        lines += ["### Transcript", ""]
        for turn in s["turns"]:
            who = "You" if turn["role"] == "user" else "Parley"
            cut = " *(interrupted)*" if turn.get("interrupted") else ""
            figures = ", ".join(f"{name} {turn[key]} ms" for key, name in LATENCY_NAMES.items() if turn.get(key))
            lines.append(f"- **{who}:** {_one_line(turn['text'])}{cut}" + (f" _({figures})_" if figures else ""))
        lines.append("")
    if s.get("questions"):
        lines += ["### Interview questions", ""]
        for n, q in enumerate(s["questions"], 1):
            lines.append(f"{n}. {_one_line(q['question'])} ({q['topic']}, {q['level']}): **{q['verdict']}**")
            if q.get("covered"):
                lines.append(f"   - covered: {'; '.join(q['covered'])}")
            if q.get("missed"):
                lines.append(f"   - missed: {'; '.join(q['missed'])}")
        lines.append("")
    if s.get("corrections"):
        lines += ["### Corrections", ""]
        for c in s["corrections"]:
            said = f" (you said: {_one_line(c['said'])})" if c.get("said") else ""
            lines.append(f"- {_one_line(c['phrase'])}{said}")
        lines.append("")
    card = s.get("scorecard")
    if card:
        totals = ", ".join(f"{name} {count}" for name, count in card["totals"].items() if count)
        lines += ["### Scorecard", "", f"Level {card['level']}: {card['answered']} of {card['asked']} answered"
                  + (f" ({totals})" if totals else "") + ".", ""]  # fmt: skip
        if card.get("study_next"):
            lines += ["Study next:", "", *(f"- {item}" for item in card["study_next"]), ""]
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())
