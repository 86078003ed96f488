"""Where a process's resident memory grew: its memory mappings (``/proc/PID/smaps``) read at two times, and the
ones whose resident pages grew most between them, with their size and what they are.

A mapping that grows towards its size and stops (a buffer allocated whole at start-up, say a model's cache,
touched further as longer inputs come) is warm-up, bounded by that size; growth spread over many new mappings,
or in mappings that are themselves growing (the main heap, glibc's thread arenas, Python's 1 MiB arenas), is
what keeps growing. ``bench.soak`` prints this from its first sample after the warm-up to its last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# glibc maps each thread arena's heap at an address aligned to its 64 MiB maximum. Other anonymous mappings hold
# malloc's big blocks, CPython's 1 MiB arenas and the runtimes' own (the kernel merges neighbours, so sizes do not
# tell them apart).
THREAD_ARENA = 64 << 20
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")


@dataclass(frozen=True)
class Mapping:
    start: int
    size_kb: int
    rss_kb: int
    name: str  # a file, [heap], [stack], or "" (anonymous)

    @property
    def kind(self) -> str:
        if self.name:
            return self.name if self.name.startswith("[") else "file"
        if self.start % THREAD_ARENA == 0 and self.size_kb <= THREAD_ARENA >> 10:
            return "glibc thread arena"
        return "anon"


def read(pid: int) -> dict[int, Mapping]:
    found: dict[int, Mapping] = {}
    current: tuple[int, int, str] | None = None  # start, size (KiB) and name of the mapping whose fields follow
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            header = _HEADER.match(line)
            if header:
                start, end = int(header.group(1), 16), int(header.group(2), 16)
                current = (start, (end - start) >> 10, header.group(4).strip())
            elif line.startswith("Rss:") and current is not None:
                start, size, name = current
                found[start] = Mapping(start, size, int(line.split()[1]), name)
    return found


def by_kind(mappings: dict[int, Mapping]) -> dict[str, float]:
    """Resident MB per kind of mapping."""
    totals: dict[str, float] = {}
    for m in mappings.values():
        totals[m.kind] = totals.get(m.kind, 0.0) + m.rss_kb / 1024
    return totals


def growth(before: dict[int, Mapping], after: dict[int, Mapping], top: int = 6) -> list[str]:
    """Lines on where resident memory grew from ``before`` to ``after``: per kind, then the mappings that grew
    most (a mapping that is new counts whole)."""
    kinds_before, kinds_after = by_kind(before), by_kind(after)
    lines = [
        f"  {kind}: {kinds_before.get(kind, 0.0):.1f} -> {kinds_after.get(kind, 0.0):.1f} MB"
        for kind in sorted(set(kinds_before) | set(kinds_after), key=lambda k: -abs(
            kinds_after.get(k, 0.0) - kinds_before.get(k, 0.0)))
        if abs(kinds_after.get(kind, 0.0) - kinds_before.get(kind, 0.0)) >= 0.5
    ]  # fmt: skip
    grown = sorted(
        ((m.rss_kb - (before[start].rss_kb if start in before else 0), m) for start, m in after.items()),
        key=lambda pair: -pair[0],
    )
    for delta, m in grown[:top]:
        if delta < 512:
            break
        new = "" if m.start in before else " (new)"
        lines.append(f"  {m.start:#x} {m.kind}{new}: +{delta / 1024:.1f} MB, now {m.rss_kb / 1024:.1f} of "
                     f"{m.size_kb / 1024:.1f} MB resident")  # fmt: skip
    gone = sum(m.rss_kb for start, m in before.items() if start not in after) / 1024
    if gone >= 0.5:
        lines.append(f"  mappings unmapped since: {gone:.1f} MB")
    return lines
