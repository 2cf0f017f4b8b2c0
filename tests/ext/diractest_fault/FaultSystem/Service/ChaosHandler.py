"""``Fault/Chaos``: what the fault tests (tests/fault) make a worker do.

Every method that runs user work appends JSON lines to
``$DIRACTEST_RECORD_DIR/executions.jsonl`` (the format of diractest's ``Work.record``:
``event``, ``tag``, ``request_id``, ``pid``, ``time``), so a test counts how often
each call's handler really ran, and in which worker process.  One short ``write``
to a file opened for append: lines from several processes never interleave.
"""

import os
import threading
import time

from diractest.records import record as _record

from DIRAC import S_ERROR, S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler

#: Exit status of a worker that a handler killed on purpose.
CRASH_STATUS = 17


class ChaosHandler(RequestHandler):
    """Recorded work, crashes, CPU burners and at-most-once methods."""

    def _who(self, tag):
        return {"tag": tag, "pid": os.getpid(), "request_id": self.request.request_id,
                "method": self.request.method}

    def initializeRequest(self):
        if not os.environ.get("DIRACTEST_RECORD_DIR"):
            return S_ERROR("DIRACTEST_RECORD_DIR is not set in the worker's environment")
        return None

    types_record = [str, (int, float)]

    def export_record(self, tag, seconds):
        """Record the start, sleep ``seconds``, record the end; return who ran it."""
        who = self._who(tag)
        _record("start", **who)
        time.sleep(seconds)
        _record("end", **who)
        return S_OK(who)

    types_seq = [int]

    def export_seq(self, number):
        """Record that request ``number`` of a sequence ran (order checks)."""
        _record("seq", n=number, pid=os.getpid(), request_id=self.request.request_id,
                thread=threading.current_thread().name)
        return S_OK(number)

    types_spin = [str, (int, float)]

    def export_spin(self, tag, seconds):
        """Burn the CPU in pure Python for ``seconds`` (the GIL is only released by ticks)."""
        who = self._who(tag)
        _record("start", **who)
        end = time.monotonic() + seconds
        loops = 0
        while time.monotonic() < end:
            for i in range(10_000):
                loops += i & 1
        _record("end", **who)
        return S_OK(dict(who, loops=loops))

    types_crash = [str]

    def export_crash(self, tag):
        """A poison request: kills whichever worker process runs it."""
        _record("start", **self._who(tag))
        os._exit(CRASH_STATUS)

    # ------------------------------------------------------------ at most once
    atMostOnce_once = True
    types_once = [str, (int, float)]

    def export_once(self, tag, seconds):
        """Like ``record``, declared at-most-once: acknowledged before it runs."""
        who = self._who(tag)
        _record("start", **who)
        time.sleep(seconds)
        _record("end", **who)
        return S_OK(who)

    atMostOnce_crashAtOnce = True
    types_crashAtOnce = [str]

    def export_crashAtOnce(self, tag):
        """At-most-once; records its start, then kills its worker at once."""
        _record("start", **self._who(tag))
        os._exit(CRASH_STATUS)
