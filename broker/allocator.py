"""Keep freed memory for the next message instead of handing it back to the OS (glibc).

glibc serves an allocation of more than 128 KiB (its starting ``M_MMAP_THRESHOLD``)
with a fresh ``mmap`` and gives it back at ``free``, and returns the top of its heap
to the OS once 128 KiB or more of it is free (``M_TRIM_THRESHOLD``).  A call with a
large body allocates several buffers of its size (the msgpack encoding, pika's
frames and their reassembly, the decoded value), so every call paid for its memory
again in page faults: about 1,000 minor faults per 1 MB echo in the client, most of
its CPU time.  Measured with ``bench/profile_call.py --payload 1MB``: 117 -> 177
calls/s with the client tuned (bench/RESULTS.md, "What changed earlier this evening").

:func:`keep_freed_memory` raises both thresholds once per process, so buffers are
reused from the heap.  The price: a process keeps up to ``megabytes`` of freed memory
(its RSS stays at its high-water mark, up to that much above what it uses).  The
``malloc_keep_mb`` setting (``DIRAC_MALLOC_KEEP_MB``) chooses it; 0 leaves glibc's
defaults.  Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

# glibc's mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2).
_MAX_MMAP_THRESHOLD = 32 * 1024 * 1024
#: mallopt() takes a C int: larger values would wrap around silently.
_MAX_INT = 2**31 - 1

_lock = threading.Lock()
_applied: int | None = None


def keep_freed_memory(megabytes: int) -> bool:
    """Let this process keep up to ``megabytes`` MiB of freed memory for reuse (glibc).

    Allocations up to half of it (32 MiB at most) then come from reusable heap memory
    rather than fresh mappings; more than 2 GiB counts as 2 GiB (mallopt takes a C
    int).  Applied once per process: later calls return whether the first one applied
    a setting, whatever their argument.  False when ``megabytes`` is 0 or the C
    library is not glibc.
    """
    global _applied
    with _lock:
        if _applied is not None:
            return _applied > 0
        _applied = 0
        if megabytes <= 0 or platform.libc_ver()[0] != "glibc":
            return False
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            keep = min(megabytes * 1024 * 1024, _MAX_INT)  # 2 GiB at most
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, min(keep // 2, _MAX_MMAP_THRESHOLD)) == 1
                      and libc.mallopt(_M_TRIM_THRESHOLD, keep) == 1)
        except (OSError, AttributeError) as exc:
            log.debug("mallopt not available: %s", exc)
            return False
        if ok:
            _applied = megabytes
        else:
            log.warning("glibc refused to keep %d MiB of freed memory (mallopt); its "
                        "defaults stay", megabytes)
        return ok
