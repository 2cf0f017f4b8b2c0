"""Answer a repeated request from memory instead of running it twice.

A request can reach a worker more than once: the broker redelivers it when the
connection of the worker holding it dropped, and a client re-publishes it (same
id) when its own connection failed mid-publish.  This cache keeps the encoded
replies of the last ``size`` requests the process answered, keyed by the caller's
broker user and the request id (a caller cannot read another user's replies by
guessing ids), and makes a copy that arrives while the first is still running
wait for it.  It holds at most 10,000 replies and 8 MiB (``dirac-worker
--reply-cache-mb``), counting each entry's own bookkeeping (``ENTRY_OVERHEAD``) as well
as its reply; a reply over an eighth of the budget is not kept.  Those bounds are what
a burst of requests can add to a worker's memory beyond its prefetch window
(bench/memory.py measures it).  It is per process: docs/reliability.md says what that
covers.
"""

from __future__ import annotations

import collections
import threading

__all__ = ["ReplyCache"]

Key = tuple[str, str]

#: Memory of one cache entry besides its reply bytes: the key tuple, its two strings and
#: the OrderedDict slot (about 310 bytes measured with 10,000 small replies).
ENTRY_OVERHEAD = 320


class ReplyCache:
    """Recently sent replies by (user, request id), with in-progress tracking."""

    #: The default memory budget (``dirac-worker --reply-cache-mb``).
    DEFAULT_MAX_BYTES = 8 * 1024 * 1024

    def __init__(self, size: int = 10_000, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.size = size
        #: Memory bound: the oldest replies go first once their total passes it, and a
        #: single reply over an eighth of it is not kept (a duplicate of it runs again).
        self.max_bytes = max_bytes
        self._bytes = 0
        self._replies: collections.OrderedDict[Key, bytes] = collections.OrderedDict()
        # The Event is made only when a copy actually has to wait (rare): None until then.
        self._running: dict[Key, threading.Event | None] = {}
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the replies kept (with their per-entry overhead)."""
        return self._bytes

    def begin(self, key: Key) -> bytes | threading.Event | None:
        """Claim ``key``: None (run it), the cached reply, or an Event to wait on."""
        with self._lock:
            reply = self._replies.get(key)
            if reply is not None:
                return reply
            if key in self._running:
                event = self._running[key]
                if event is None:
                    event = self._running[key] = threading.Event()
                return event
            self._running[key] = None
            return None

    def begin_peek(self, key: Key) -> bool:
        """Whether ``key`` was answered or is running here (nothing is claimed)."""
        with self._lock:
            return key in self._replies or key in self._running

    def finish(self, key: Key, reply: bytes | None) -> None:
        """Record the reply of a claimed ``key`` (None: nothing to remember) and release it."""
        with self._lock:
            if reply is not None and len(reply) <= self.max_bytes // 8 \
                    and key not in self._replies:
                self._replies[key] = reply
                self._bytes += len(reply) + ENTRY_OVERHEAD
                while len(self._replies) > self.size or self._bytes > self.max_bytes:
                    self._bytes -= len(self._replies.popitem(last=False)[1]) + ENTRY_OVERHEAD
            event = self._running.pop(key, None)
        if event is not None:
            event.set()
