"""``Test/Work``: slow calls, and calls that record each execution.

``record`` appends one JSON line per start and end of an execution to
``$DIRACTEST_RECORD_DIR/executions.jsonl`` (request id, pid, redelivered), so a test
can see which worker process ran a request, and how many times.
"""

import os
import time

from DIRAC import S_ERROR, S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler
from diractest.records import record as _record


class WorkHandler(RequestHandler):
    """Methods whose duration or execution count the tests observe."""

    types_pid = []

    def export_pid(self):
        return S_OK(os.getpid())

    types_sleep = [(int, float)]

    def export_sleep(self, seconds):
        time.sleep(seconds)
        return S_OK(os.getpid())

    types_echoSlow = [None, (int, float)]

    def export_echoSlow(self, data, seconds):
        time.sleep(seconds)
        return S_OK(data)

    types_record = [str, (int, float)]

    def export_record(self, tag, seconds):
        """Record the start, sleep ``seconds``, record the end; return who ran it."""
        if not os.environ.get("DIRACTEST_RECORD_DIR"):
            return S_ERROR("DIRACTEST_RECORD_DIR is not set in the worker's environment")
        who = {
            "tag": tag,
            "pid": os.getpid(),
            "request_id": self.request.request_id,
            "redelivered": self.request.redelivered,
        }
        _record("start", **who)
        time.sleep(seconds)
        _record("end", **who)
        return S_OK(who)
