"""The calls a client process has in flight: request id -> waiting call, and outcomes.

This is the client's registry of waiting calls (oslo.messaging's ``ReplyWaiters``),
kept apart from the code that owns the connection (client/transport.py).  It knows
nothing of AMQP: a call is registered, published, then finished exactly once, by a
reply, a return, a failure or its deadline, and whoever waits for it is woken.

Every method here is called with :attr:`CallRegistry.lock` held (the transport's
one lock, see client/transport.py); none of them blocks except :meth:`Call.wait`,
which releases it while sleeping.
"""

from __future__ import annotations

import enum
import errno
import threading
import time

from diracmq.broker.derrno import EMQNOWORKER
from diracmq.broker.returnvalues import S_ERROR, DReturnType

__all__ = ["Call", "CallRegistry", "Leader"]


class Leader(enum.Enum):
    """Who drives the connection right now."""

    NOBODY = "nobody"
    #: A thread waiting for its own call (or publishing a submitted one).
    CALLER = "caller"
    #: The background thread that keeps heartbeats and late replies flowing.
    IDLE_THREAD = "idle thread"


class Call:
    """One request in flight: the slot its reply (or failure) is put into."""

    __slots__ = ("service", "method", "request_id", "body", "timeout", "deadline",
                 "check_at", "cond", "reply", "error", "done", "waiting", "published",
                 "confirmed", "attempts", "not_before", "consumers", "extra_headers")

    def __init__(self, service: str, method: str, request_id: str, body: bytes,
                 timeout: float, cond: threading.Condition, no_worker_after: float) -> None:
        self.service = service
        self.method = method
        self.request_id = request_id
        self.body = body
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        #: When to ask the broker whether anything consumes the service's queue (then
        #: again every ``no_worker_after`` seconds while the call waits; a first "none"
        #: is confirmed by a second look a few seconds later).  A call shorter
        #: than that asks shortly before its deadline, so that its timeout can still say
        #: "no worker" without running late.
        self.check_at = time.monotonic() + min(no_worker_after,
                                               timeout - min(1.5, timeout * 0.2))
        self.cond = cond
        self.reply: bytes | None = None
        self.error: DReturnType | None = None
        self.done = False
        self.waiting = 0  # threads blocked in wait() for this call
        self.published = False
        #: With publisher confirms: whether the broker confirmed taking the request (of
        #: its latest publish).  None: confirms are off.
        self.confirmed: bool | None = None
        self.attempts = 0
        #: Not to be published again before this (monotonic): after a refusal.
        self.not_before = 0.0
        self.consumers: int | None = None  # consumers of the service queue, if checked
        #: Encoded header entries the caller's context adds (client/context.py).
        self.extra_headers = b""

    @property
    def where(self) -> str:
        return f"{self.service}.{self.method}"

    def wait(self, seconds: float) -> None:
        """Sleep (releasing the registry's lock) until woken or ``seconds`` pass."""
        self.waiting += 1
        try:
            self.cond.wait(seconds)
        finally:
            self.waiting -= 1

    def timeout_error(self) -> DReturnType:
        """The S_ERROR for a call that got no reply, saying why when the broker told us."""
        message = f"no reply from {self.where} within {self.timeout:g}s (request {self.request_id})"
        if self.published and self.confirmed is False:
            message += "; the broker had not confirmed taking the request"
        if self.published and self.consumers == 0:
            return S_ERROR(EMQNOWORKER, f"{message}; the queue of {self.service} has no "
                                        f"consumer: is a worker for its System running?")
        return S_ERROR(errno.ETIMEDOUT, message)


class CallRegistry:
    """Calls by request id (the correlation id of their replies)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self._calls: dict[str, Call] = {}
        #: Replies that came after their caller gave up (timed out); they are dropped.
        self.late_replies = 0

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._calls

    def add(self, call: Call) -> None:
        self._calls[call.request_id] = call

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def get(self, request_id: object) -> Call | None:
        """The call waiting with that request id, if any."""
        return self._calls.get(request_id) if isinstance(request_id, str) else None

    def deliver(self, request_id: object, reply: bytes) -> None:
        """A reply came: hand it to its call (a reply for no call is counted, dropped)."""
        call = self._calls.pop(request_id, None) if isinstance(request_id, str) else None
        if call is None:
            self.late_replies += 1
            return
        call.reply = reply
        self._wake(call)

    def fail(self, call: Call, error: DReturnType) -> None:
        """Finish ``call`` with ``error`` unless it is finished already."""
        if self._calls.pop(call.request_id, None) is None and call.done:
            return
        call.error = error
        self._wake(call)

    def fail_id(self, request_id: object, error: DReturnType) -> None:
        call = self._calls.get(request_id) if isinstance(request_id, str) else None
        if call is not None:
            self.fail(call, error)

    def give_up(self, call: Call) -> None:
        """The call's deadline passed: forget it (a late reply is then dropped)."""
        self._calls.pop(call.request_id, None)
        call.done = True

    def wake_one_waiting(self) -> None:
        """Wake one thread still waiting for its call (to become the leader)."""
        for other in self._calls.values():
            if other.waiting and not other.done:
                other.cond.notify()
                return

    def has_waiting(self) -> bool:
        return any(c.waiting and not c.done for c in self._calls.values())

    @staticmethod
    def _wake(call: Call) -> None:
        call.done = True
        if call.waiting:
            call.cond.notify_all()
