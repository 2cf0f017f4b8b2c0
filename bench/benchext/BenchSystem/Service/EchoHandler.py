"""``Bench/Echo``: the handler every diracmq benchmark calls.

* ``echo(value)``: returns ``value`` (the RPC layer's own cost).
* ``sleep(value)``: waits ``SLEEP_MS`` (10 ms) without using the CPU, then returns
  ``value``: an I/O-bound handler, for scale-out runs over handler threads.
* ``cpu(value)``: runs a pure-Python loop of about ``CPU_MS`` (5 ms) on an idle core,
  then returns ``value``: a CPU-bound handler, for scale-out runs over processes.
* ``jobs(n)``: returns ``n`` job records (:func:`job_records`), the typical DIRAC
  reply, built once per ``n``: the cost of a large structured reply on the wire.

The CPU loop is a fixed number of iterations, calibrated once per process (or set
with ``BENCH_CPU_ITERATIONS``), so it costs the same CPU work whatever the load:
two such calls in two threads of one process take twice as long (the GIL).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from typing import Any, ClassVar

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

SLEEP_MS = float(os.environ.get("BENCH_SLEEP_MS", "10"))
CPU_MS = float(os.environ.get("BENCH_CPU_MS", "5"))


def _spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def _calibrate(target_ms: float) -> int:
    """Iterations of :func:`_spin` that take ``target_ms`` here (best of 5 probes)."""
    probe = 20_000
    best = min(_timed(probe) for _ in range(5))
    return max(1, int(probe * target_ms / 1000 / best))


def _timed(iterations: int) -> float:
    start = time.perf_counter()
    _spin(iterations)
    return time.perf_counter() - start


_STATUSES = ("Waiting", "Matched", "Running", "Completing", "Done", "Failed")
_SITES = ("LCG.CERN.cern", "LCG.IN2P3.fr", "LCG.RAL.uk", "LCG.PIC.es", "DIRAC.Jenkins.ch")
_FINISHED = ("Done", "Failed")


def _db_str(value: str) -> str:
    # A new str object, as a database driver returns for each row: records sharing
    # one str object would flatter pickle, whose memo sends a repeated object once.
    return value.encode().decode()


def job_record(i: int) -> dict[str, Any]:
    """Job ``i`` as DIRAC's JobDB returns it: 21 attributes, naive UTC datetimes.

    Three datetimes always set, two set only once the job started or finished
    (``None`` before), as in the ``Jobs`` table.
    """
    status = _STATUSES[i % len(_STATUSES)]
    submitted = dt.datetime(2024, 5, 1, 12, 0, 0) + dt.timedelta(seconds=37 * i)
    started = None if status in ("Waiting", "Matched") else submitted + dt.timedelta(minutes=3)
    ended = submitted + dt.timedelta(hours=2, seconds=i) if status in _FINISHED else None
    return {
        "JobID": 10_000_000 + i,
        "JobName": _db_str(f"analysis_{i:05d}"),
        "JobType": _db_str("User"),
        "JobGroup": _db_str("group_00042"),
        "Owner": _db_str("alice"),
        "OwnerGroup": _db_str("dirac_user"),
        "VO": _db_str("dirac"),
        "Site": _db_str(_SITES[i % len(_SITES)]),
        "Status": _db_str(status),
        "MinorStatus": _db_str("Application" if started else "Pilot Agent Submission"),
        "ApplicationStatus": _db_str("Running step 2 of 3" if started else "Unknown"),
        "SubmissionTime": submitted,
        "LastUpdateTime": submitted + dt.timedelta(minutes=5, microseconds=1000 * (i % 997)),
        "HeartBeatTime": submitted + dt.timedelta(minutes=10, seconds=i % 60),
        "StartExecTime": started,
        "EndExecTime": ended,
        "RescheduleTime": None,
        "RescheduleCounter": i % 3,
        "UserPriority": 1,
        "VerifiedFlag": True,
        "AccountedFlag": status in _FINISHED,
    }


@functools.lru_cache(maxsize=8)
def job_records(n: int) -> list[dict[str, Any]]:
    """``n`` job records (:func:`job_record`), built once per ``n`` (do not modify them)."""
    return [job_record(i) for i in range(n)]


class EchoHandler(RequestHandler):
    """Echo, I/O-bound and CPU-bound methods for the benchmarks."""

    cpu_iterations: ClassVar[int] = 0

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        fixed = os.environ.get("BENCH_CPU_ITERATIONS")
        cls.cpu_iterations = int(fixed) if fixed else _calibrate(CPU_MS)
        return S_OK()

    types_echo: ClassVar[list] = [None]

    def export_echo(self, value: Any) -> DReturnType:
        """Return ``value`` unchanged."""
        return S_OK(value)

    types_sleep: ClassVar[list] = [None]

    def export_sleep(self, value: Any) -> DReturnType:
        """Wait SLEEP_MS (I/O-bound), then return ``value``."""
        time.sleep(SLEEP_MS / 1000)
        return S_OK(value)

    types_cpu: ClassVar[list] = [None]

    def export_cpu(self, value: Any) -> DReturnType:
        """Burn about CPU_MS of pure-Python CPU, then return ``value``."""
        _spin(self.cpu_iterations or _calibrate(CPU_MS))
        return S_OK(value)

    types_jobs: ClassVar[list] = [int]

    def export_jobs(self, n: int) -> DReturnType:
        """Return ``n`` (at most 100000) realistic job records, built once per ``n``."""
        if not 0 <= n <= 100_000:
            return S_ERROR(f"n must be between 0 and 100000, not {n}")
        return S_OK(job_records(n))
