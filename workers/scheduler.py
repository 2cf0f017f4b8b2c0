"""Which delivered request a worker starts next, and where.

The worker's consumer (workers/server.py) hands every delivery it accepts to the
:class:`Scheduler`; the I/O thread then asks :meth:`Scheduler.next` what to start:

* in order of arrival;
* **inline** on the I/O thread when the method's recent runs took less than
  ``inline_threshold`` seconds (no thread hand-off: two wake-ups saved per request),
  else in the handler pool;
* a **suspect** (a request whose previous worker died holding it, workers/poison.py)
  only when nothing else runs in this process, and then nothing else starts until it is
  done: if it kills the process, it was alone, and the alone-file says so.

It holds no lock: only the thread that owns the driver's I/O calls it.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
from typing import Any

from diracmq.broker import codec
from diracmq.broker.driver import Delivery
from diracmq.workers.poison import AloneFiles

__all__ = ["Placement", "Scheduler", "Work"]

log = logging.getLogger(__name__)

#: Bodies larger than this never run inline (decoding them is work for a pool thread).
_INLINE_MAX_BODY = 65536


class Placement(enum.Enum):
    """Where a request runs."""

    #: On the I/O thread (the watchdog drives the connection meanwhile).
    INLINE = "inline"
    #: On a handler thread of the pool.
    POOL = "pool"
    #: On a handler thread of the pool, with nothing else running in the process.
    ALONE = "alone"


@dataclasses.dataclass(slots=True, eq=False)
class Work:
    """One delivered request on its way through the worker."""

    service: str
    delivery: Delivery
    #: It came back through the retry loop after a worker died holding it.
    suspect: bool = False
    #: Set by whoever ran it: the reply bytes (None: no reply) and whether to ack.
    reply: bytes | None = None
    ack: bool = True
    #: The reply went to the I/O thread before the run's bookkeeping (Worker._run).
    handed: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(broker user, request id): the request's identity for dedup and alone-files."""
        props = self.delivery.properties
        return (str(props.user_id or ""), str(props.message_id or ""))


class Scheduler:
    """Ready requests and the rule that starts them (see the module doc)."""

    def __init__(self, inline_threshold: float, max_decoded_items: int,
                 alone_files: AloneFiles) -> None:
        #: Run a method inline when its recent runs took less (seconds; 0: never).
        self.inline_threshold = inline_threshold
        self.max_decoded_items = max_decoded_items
        self.alone_files = alone_files
        self._ready: collections.deque[Work] = collections.deque()
        #: Started and not finished, of any connection.
        self.running = 0
        #: The suspect running by itself, if any.
        self.alone: Work | None = None
        self._durations: dict[tuple[str, str], float] = {}  # moving average per method

    def __bool__(self) -> bool:
        """Whether a request waits to be started."""
        return bool(self._ready)

    def add(self, work: Work) -> None:
        """A delivery accepted by the consumer."""
        self._ready.append(work)

    def drop_ready(self) -> None:
        """The connection died: its deliveries not started went back to the broker."""
        self._ready.clear()

    def next(self, inline: bool) -> tuple[Work, Placement, dict[str, Any] | None] | None:
        """The request to start now, where, and (inline) its decoded body; None: wait."""
        if not self._ready or self.alone is not None:
            return None
        work = self._ready[0]
        if work.suspect:
            if self.running:
                return None  # a suspect starts only when nothing else runs here
            self._ready.popleft()
            self.alone = work
            user, request_id = work.key
            log.warning("request %s to %s came back after a worker died holding it: running "
                        "it alone", request_id or "(no id)", work.service)
            if request_id:
                self.alone_files.running(user, request_id)
            self.running += 1
            return work, Placement.ALONE, None
        self._ready.popleft()
        self.running += 1
        message = self._fast_message(work) if inline else None
        if message is None:
            return work, Placement.POOL, None
        return work, Placement.INLINE, message

    def finished(self, work: Work) -> None:
        """A started request is done (whatever became of its connection)."""
        self.running -= 1
        if work is self.alone:
            self.alone = None
            user, request_id = work.key
            if request_id:
                self.alone_files.done(user, request_id)

    def record(self, service: str, method: str, seconds: float) -> None:
        """How long a run of a real method took (names from the wire are not recorded)."""
        key = (service, method)
        previous = self._durations.get(key)
        self._durations[key] = seconds if previous is None else 0.7 * previous + 0.3 * seconds

    def _fast_message(self, work: Work) -> dict[str, Any] | None:
        """The decoded request if its method is fast enough to run inline, else None."""
        body = work.delivery.body
        if self.inline_threshold <= 0 or len(body) > _INLINE_MAX_BODY:
            return None
        try:
            message = codec.unpackb(body, max_items=self.max_decoded_items)
        except codec.DecodeError:
            return None  # the pool path reports it
        method = message.get("method") if isinstance(message, dict) else None
        if not isinstance(method, str):
            return None  # malformed: the pool path reports it (never raise on the I/O thread)
        duration = self._durations.get((work.service, method))
        return message if duration is not None and duration < self.inline_threshold else None
