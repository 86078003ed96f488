"""JSON from clients (the offer's body, data-channel messages), with a depth limit.

The size limits are the callers' (64 KiB for an offer, 16 KiB for a message). Depth needs one of its own: a
16 KiB message of ``[[[[...`` makes the standard parser raise RecursionError, which is no ``ValueError`` and went
past every handler (a 500 for an offer; for a message, an exception inside aiortc's data-channel callback). Our
messages are flat objects, so a few levels are plenty; anything deeper is refused in words.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 16


class BadJson(ValueError):
    """Not JSON, or JSON nested too deeply; the message says which, in words."""


def loads(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError as exc:  # deeper than the interpreter's recursion limit (~1000)
        raise BadJson(f"nested too deeply (at most {max_depth} levels)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadJson("not valid JSON") from exc
    if _deeper_than(value, max_depth):
        raise BadJson(f"nested too deeply (at most {max_depth} levels)")
    return value


def _deeper_than(value: Any, levels: int) -> bool:
    """True when ``value`` nests more than ``levels`` arrays or objects (stops as soon as it knows)."""
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    if levels == 0:
        return True
    return any(_deeper_than(child, levels - 1) for child in children)
