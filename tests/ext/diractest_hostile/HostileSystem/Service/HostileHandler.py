"""``Hostile/Misbehave``: handlers that do what a faulty handler does (tests/hostile).

Each method that runs user work appends a JSON line to
``$DIRACTEST_RECORD_DIR/executions.jsonl`` (diractest's ``records`` format) before it
misbehaves, so a test knows which process ran it.
"""

import os
import sys
import time

from diractest.records import record as _record

from DIRAC import S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler


class HostileHandler(RequestHandler):
    """Sleepers, process killers, ``BaseException`` raisers and huge replies."""

    def _who(self, tag):
        return {"tag": tag, "pid": os.getpid(), "request_id": self.request.request_id,
                "method": self.request.method}

    types_sleep = [str, (int, float)]

    def export_sleep(self, tag, seconds):
        """Record the start, sleep ``seconds``, record the end; return who ran it."""
        who = self._who(tag)
        _record("start", **who)
        time.sleep(seconds)
        _record("end", **who)
        return S_OK(who)

    types_osExit = [str, int]

    def export_osExit(self, tag, status):
        """Kill this worker process at once with exit ``status`` (a crash, not an error)."""
        _record("start", **self._who(tag))
        os._exit(status)

    types_raiseBase = [str, str]

    def export_raiseBase(self, tag, kind):
        """Raise a ``BaseException`` that is not an ``Exception``: what a handler's
        ``sys.exit()``, a stray ``KeyboardInterrupt`` or ``GeneratorExit`` does."""
        _record("start", **self._who(tag))
        if kind == "SystemExit":
            sys.exit(3)
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt("raised by a handler")
        if kind == "GeneratorExit":
            raise GeneratorExit("raised by a handler")
        raise ValueError(f"unknown kind {kind!r}")

    types_huge = [int]

    def export_huge(self, size):
        """A reply of ``size`` bytes (beyond the broker's message size limit, on purpose)."""
        return S_OK(b"x" * size)
