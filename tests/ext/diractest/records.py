"""Execution records of test handlers: what ran, where and when, for the tests to read.

Each event is one JSON line appended to ``$DIRACTEST_RECORD_DIR/executions.jsonl``
(nothing is written when the variable is unset).  Shared by diractest's Work handler
and diractest_fault's Chaos handler.
"""

import json
import os
import time


def record(event, **fields):
    folder = os.environ.get("DIRACTEST_RECORD_DIR")
    if not folder:
        return
    line = json.dumps(dict(fields, event=event, time=time.time())) + "\n"
    # One write of a short line to a file opened for append: lines never interleave,
    # and the line is on disk when the file closes, before a handler may crash on purpose.
    with open(os.path.join(folder, "executions.jsonl"), "a") as fh:
        fh.write(line)
