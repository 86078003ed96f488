"""docs/protocol.md and server/protocol.py agree: every message kind is documented with examples, and every
example has the fields its type says (the required ones, and no others)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints

import pytest

from server.protocol import CLIENT_MESSAGES, SERVER_EVENTS

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def examples(section: str) -> list[dict]:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/protocol.md has no '## {section}' section"
    blocks = re.findall(r"^```json\n(.*?)^```", match.group(1), re.M | re.S)
    return [json.loads(line) for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("section", "types"), [("Server to client", SERVER_EVENTS), ("Client to server", CLIENT_MESSAGES)]
)
def test_every_kind_is_documented_with_the_fields_of_its_type(section, types):
    found = examples(section)
    assert {e["type"] for e in found} == set(types)
    for example in found:
        typed = types[example["type"]]
        allowed = typed.__required_keys__ | typed.__optional_keys__
        assert set(example) <= allowed, (example, set(example) - allowed)
        assert typed.__required_keys__ <= set(example), (example, typed.__required_keys__ - set(example))
        for field, hint in get_type_hints(typed).items():
            if get_origin(hint) is Literal and field in example:  # a documented value is one the type allows
                assert example[field] in get_args(hint), (example, field)
