"""``Bench/Echo``: the handler every diracmq benchmark calls.

* ``echo(value)``: returns ``value`` (the RPC layer's own cost).
* ``sleep(value)``: waits ``SLEEP_MS`` (10 ms) without using the CPU, then returns
  ``value``: an I/O-bound handler, for scale-out runs over handler threads.
* ``cpu(value)``: runs a pure-Python loop of about ``CPU_MS`` (5 ms) on an idle core,
  then returns ``value``: a CPU-bound handler, for scale-out runs over processes.

The CPU loop is a fixed number of iterations, calibrated once per process (or set
with ``BENCH_CPU_ITERATIONS``), so it costs the same CPU work whatever the load:
two such calls in two threads of one process take twice as long (the GIL).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from broker.returnvalues import S_OK, DReturnType
from workers.handler import RequestHandler

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
