"""Poison requests: which request killed its worker, told apart from its neighbours.

When a worker process dies, the broker redelivers *every* request it held: the one
that killed it, and the innocent ones that ran or waited beside it.  Counting deaths
alone would park the neighbours too once the killer strikes twice.  So:

1. A redelivered request goes once round the retry loop (broker/topology.py), which
   stamps the broker's own death count into ``x-death``: it is now a *suspect*.
2. A worker runs a suspect **alone**: it starts it only when nothing else is running
   in its process, and starts nothing else until it is done.  Before it starts, it
   writes a small *alone-file* (pid and process start time) under a per-user run
   directory, and removes it afterwards.
3. When a suspect is redelivered again, the worker looks for its alone-file: if the
   process named there is dead, the suspect was running by itself when its worker
   died; it is *convicted* and parked.  A neighbour that only waited in that process
   has no such file and goes round again.

The alone-files are per machine: a suspect redelivered to another host is judged by
the death count, with a higher bound (``poison_after + HOST_SLACK``) so that a loop
still ends.  A process that only lost its connection is alive, so its suspect is not
convicted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

__all__ = ["AloneFiles", "HOST_SLACK"]

log = logging.getLogger(__name__)

#: Extra deaths tolerated for a request whose alone-file is on another machine.
HOST_SLACK = 3


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None if not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] in ("Z", "X"):
        return None  # a zombie has died; only its parent has not reaped it yet
    return fields[19] if len(fields) > 19 else "?"


class AloneFiles:
    """The alone-files of one machine (see the module doc)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        if directory is None:
            directory = Path(tempfile.gettempdir()) / f"diracmq-{os.getuid()}" / "alone"
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._me = f"{os.getpid()} {_start_time(os.getpid())}"

    def _path(self, user: str, request_id: str) -> Path:
        # Both parts come from the wire: hashed, never used as a path themselves.
        digest = hashlib.sha256(f"{user}\0{request_id}".encode()).hexdigest()[:40]
        return self.directory / digest

    def running(self, user: str, request_id: str) -> None:
        """Record that this process runs the request alone from now on."""
        try:
            self._path(user, request_id).write_text(self._me)
        except OSError as exc:
            log.warning("cannot write an alone-file in %s: %s", self.directory, exc)

    def done(self, user: str, request_id: str) -> None:
        """The request finished (or will not run here): forget it."""
        try:
            self._path(user, request_id).unlink(missing_ok=True)
        except OSError:
            pass

    def convicted(self, user: str, request_id: str) -> bool:
        """Whether the request was running alone in a process that has died since."""
        path = self._path(user, request_id)
        try:
            pid_text, _, started = path.read_text().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            return False
        if _start_time(pid) == started and pid != os.getpid():
            return False  # still alive: it lost its connection, it did not die
        if pid == os.getpid() and f"{pid} {started}" == self._me:
            return False  # ours, and we are alive
        path.unlink(missing_ok=True)
        return True
