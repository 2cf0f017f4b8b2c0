"""Helpers of the fault tests: Chaos workers, load generators and the accounting of calls.

The accounting is the point of every fault test: each call the test makes is
recorded with its timeout, how long it took and what it returned; each time a
handler really ran, the worker appended a line to ``executions.jsonl``
(tests/ext/diractest_fault).  :func:`account` puts the two together and checks
that no call was lost, none was answered twice, none waited past its deadline,
and how many times each ran.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pika
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQCONN, EMQDEADLETTER, EMQNOQUEUE, EMQNOWORKER
from diracmq.client.base import Client
from diracmq_testing import WorkerPool, wait_until

__all__ = ["CallRecord", "Calls", "FaultPool", "account", "counters", "errno_name", "join_all",
           "queue_state", "settings_for", "vm_rss_kb", "wait_started"]

FAULT_EXTENSION = "diractest_fault"
FAULT_SERVICES = ("Chaos",)
#: How far past its timeout a call may return before the tests call it "hung": thread
#: wake-ups on a loaded 2-core box, not a design allowance.
SLACK = 1.0

ERRNO_NAMES = {EMQCONN: "EMQCONN", EMQNOQUEUE: "EMQNOQUEUE", EMQNOWORKER: "EMQNOWORKER",
               EMQDEADLETTER: "EMQDEADLETTER", errno.ETIMEDOUT: "ETIMEDOUT"}


def errno_name(number: Any) -> str:
    return ERRNO_NAMES.get(number, str(number))


def settings_for(url: str, **kw: Any) -> Settings:
    """Client settings with test-sized timeouts (nothing read from the environment)."""
    values = {"rpc_timeout": 10.0, "connect_timeout": 5.0, "heartbeat": 30}
    values.update(kw)
    return Settings(url=url, **values)


class FaultPool(WorkerPool):
    """tests/diracmq_testing.WorkerPool serving ``diractest_fault``'s Chaos handler.

    ``start(url=..., env=...)`` starts one worker on another URL (through a proxy)
    or with extra environment (``DIRAC_BROKER_HEARTBEAT``); all workers of the pool
    record their executions in the same file.
    """

    ALIAS_EXTENSION = FAULT_EXTENSION
    ALIAS_SYSTEM = "Fault"
    ALIAS_PREFIX = "F"

    def start(self, system: str | None = None, *, url: str | None = None,
              env: dict[str, str] | None = None, **kw: Any):
        saved_url = self.broker_url
        saved_env = {k: os.environ.get(k) for k in (env or {})}
        if url:
            self.broker_url = url
        os.environ.update(env or {})
        try:
            return super().start(system, **kw)
        finally:
            self.broker_url = saved_url
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def executions(self, methods: Iterable[str] | None = None) -> collections.Counter:
        """tag -> how many times a handler *started* running it."""
        wanted = set(methods) if methods else None
        return collections.Counter(
            r["tag"] for r in self.records()
            if r.get("event") == "start" and (wanted is None or r.get("method") in wanted))


# ------------------------------------------------------------------ calls
@dataclasses.dataclass
class CallRecord:
    tag: str
    timeout: float
    started: float  # time.monotonic()
    elapsed: float
    result: dict

    @property
    def ok(self) -> bool:
        return self.result.get("OK") is True

    @property
    def errno(self) -> Any:
        return None if self.ok else self.result.get("Errno")


class Calls:
    """A thread-safe log of calls; :meth:`run_load` drives several threads of them."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._lock = threading.Lock()
        self._seq = 0

    def new_tag(self, prefix: str = "c") -> str:
        with self._lock:
            self._seq += 1
            return f"{prefix}{self._seq}-{uuid.uuid4().hex[:8]}"

    def call(self, client: Client, method: str, *args: Any, timeout: float,
             tag: str | None = None) -> CallRecord:
        """``client.<method>(tag, *args)`` timed and logged."""
        tag = tag or self.new_tag()
        started = time.monotonic()
        result = getattr(client, method)(tag, *args, timeout=timeout)
        record = CallRecord(tag, timeout, started, time.monotonic() - started, result)
        with self._lock:
            self.records.append(record)
        return record

    def start(self, client: Client, method: str, *args: Any, tags: Iterable[str],
              timeout: float) -> list[threading.Thread]:
        """One thread per tag making ``client.<method>(tag, *args)`` once; started."""
        threads = [threading.Thread(target=self.call, args=(client, method, *args),
                                    kwargs={"timeout": timeout, "tag": tag}, name=tag)
                   for tag in tags]
        for thread in threads:
            thread.start()
        return threads

    def run_load(self, make_call: Callable[[int], Any], threads: int,
                 stop: threading.Event, pause: float = 0.0) -> list[threading.Thread]:
        """Start ``threads`` threads calling ``make_call(i)`` until ``stop`` is set."""
        def loop(index: int) -> None:
            while not stop.is_set():
                make_call(index)
                if pause:
                    time.sleep(pause)

        workers = [threading.Thread(target=loop, args=(i,), daemon=True, name=f"load-{i}")
                   for i in range(threads)]
        for thread in workers:
            thread.start()
        return workers

    def by_outcome(self) -> collections.Counter:
        return collections.Counter("OK" if r.ok else errno_name(r.errno) for r in self.records)


def join_all(threads: Iterable[threading.Thread], timeout: float = 40.0) -> None:
    """Join ``threads`` within ``timeout`` s in all; fail naming any still waiting."""
    threads = list(threads)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"calls still waiting {timeout:g}s later: {hung}"


def wait_started(pool: FaultPool, tags: Iterable[str], timeout: float = 10.0) -> None:
    """Wait until the handler of every call in ``tags`` has recorded its start."""
    tags = list(tags)
    wait_for(lambda: all(pool.executions()[t] for t in tags), timeout,
             f"calls {sorted(tags)} to start")


@dataclasses.dataclass
class Accounting:
    made: int
    ok: int
    errors: collections.Counter
    executions_histogram: collections.Counter  # executions per call -> number of calls
    unexplained: list[str]
    late: list[CallRecord]

    def summary(self) -> str:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "none"
        hist = ", ".join(f"{k}x: {v}" for k, v in sorted(self.executions_histogram.items()))
        failed = sum(self.errors.values())
        return (f"calls made {self.made}, answered OK {self.ok}, S_ERROR {failed} ({errors}), "
                f"lost 0, executions per call: {hist}")


def account(calls: Iterable[CallRecord], executions: collections.Counter,
            allowed_errors: Iterable[int], *, max_ok_executions: int = 1,
            max_error_executions: int = 1, slack: float = SLACK) -> Accounting:
    """Check every call and return the figures; raise AssertionError listing every problem.

    * a call answered OK ran exactly once... up to ``max_ok_executions`` (a documented
      duplicate case raises it);
    * a call answered S_ERROR has an allowed errno and ran at most
      ``max_error_executions`` times (EMQCONN: "may or may not have run");
    * no call returned later than ``timeout + slack``.

    "Lost" is a call that never returned: the callers' threads must all have ended
    before this is called, so every call made is in ``calls``.
    """
    calls = list(calls)
    allowed = set(allowed_errors)
    problems: list[str] = []
    errors: collections.Counter = collections.Counter()
    hist: collections.Counter = collections.Counter()
    late = []
    ok = 0
    for call in calls:
        runs = executions.get(call.tag, 0)
        hist[runs] += 1
        if call.elapsed > call.timeout + slack:
            late.append(call)
            problems.append(f"{call.tag}: returned after {call.elapsed:.2f}s, timeout "
                            f"{call.timeout:g}s: {short(call.result)}")
        if call.ok:
            ok += 1
            if not 1 <= runs <= max_ok_executions:
                problems.append(f"{call.tag}: answered OK but its handler ran {runs} times")
            continue
        errors[errno_name(call.errno)] += 1
        if call.errno not in allowed:
            problems.append(f"{call.tag}: unexpected error {short(call.result)}")
        if not call.result.get("Message"):
            problems.append(f"{call.tag}: S_ERROR without a message {call.result}")
        if runs > max_error_executions:
            problems.append(f"{call.tag}: S_ERROR but its handler ran {runs} times: "
                            f"{short(call.result)}")
    result = Accounting(len(calls), ok, errors, hist, problems, late)
    if problems:
        raise AssertionError(f"{len(problems)} problem(s) ({result.summary()}):\n  "
                             + "\n  ".join(problems[:30]))
    return result


def short(result: dict) -> str:
    if result.get("OK"):
        return "S_OK"
    return f"S_ERROR({result.get('Errno')}, {str(result.get('Message'))[:300]!r})"


# ------------------------------------------------------------- observing
def counters(settings: Settings, system: str, timeout: float = 10.0) -> dict:
    """The counters of whichever worker of ``system`` answers a ping."""
    result = Client(url=f"{system}/Chaos", settings=settings).ping(timeout=timeout)
    assert result["OK"], result
    return result["Value"]["counters"]


def queue_state(url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue, by a passive declare."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        frame = conn.channel().queue_declare(queue, passive=True)
        return frame.method.message_count, frame.method.consumer_count
    finally:
        conn.close()


def drain_queue(url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Every message in ``queue`` (basic.get, acked: the queue is emptied)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    out = []
    try:
        channel = conn.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((props, body))
    finally:
        conn.close()


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


wait_for = wait_until  # the same polling wait, under the name these tests use
