"""The C heap under Python's: how much glibc's malloc has handed out, how much it keeps free, and handing the
free pages back to the system when a call ends.

The embedded models run on worker threads (speech recognition, the chat model, synthesis, the VAD), and glibc
gives each thread that allocates its own arena. What a call's inference frees there stays in the process: an
arena shrinks only from its top, so the free pages between blocks still in use count in the resident memory
for good, and with every call the arenas' free space grew (``python -m bench.soak``: see bench/README.md).
``malloc_trim(0)`` walks every arena and returns its free whole pages (``madvise(MADV_DONTNEED)``); doing it
once a call has ended keeps the resident memory at what is really in use.

Only on glibc (Linux); elsewhere (musl, macOS) both are no-ops and the figures are absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time

logger = logging.getLogger(__name__)


_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2  # glibc 2.33 and later (Debian 12 has 2.36)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def available() -> bool:
    return _LIBC is not None


def heap_bytes() -> tuple[int, int] | None:
    """(bytes in use, bytes free but kept) over all of malloc's arenas, big blocks mapped on their own included
    in use; None off glibc."""
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return int(info.uordblks + info.hblkhd), int(info.fordblks)


def give_back() -> float:
    """Returns the free pages of every arena to the system; the seconds it took (blocking: run it off the
    event loop)."""
    if _LIBC is None:
        return 0.0
    started = time.perf_counter()
    _LIBC.malloc_trim(0)
    return time.perf_counter() - started
