"""Prometheus metrics of a client process, off unless :func:`enable` is called.

::

    from diracmq.client import metrics
    metrics.enable(port=9200)     # serve them on :9200/metrics; or enable() and serve
                                  # prometheus_client's default registry yourself

* ``rpc_client_call_duration_seconds{service, method, outcome}``: histogram of the time
  from sending a call to its result (OpenTelemetry's ``rpc.client.call.duration``);
  ``service`` is ``System/Service``, ``outcome`` ``OK``, the name of the error code
  (DIRAC's, e.g. ``EMQNOWORKER``, or errno's, e.g. ``ETIMEDOUT``) or ``ERROR``.
* ``dirac_client_reconnections_total``: connections to the broker lost.

Labels stay bounded: a process may call any method name, so at most
:data:`MAX_SERIES` (service, method) pairs get their own label values; later ones are
counted under ``method="_other"``.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from diracmq.broker.derrno import dErrorCode

__all__ = ["MAX_SERIES", "count_reconnection", "enable", "observe_call", "outcome_of"]

MAX_SERIES = 500
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0, 60.0, 120.0, 600.0)

enabled = False
_metrics: dict[str, Any] = {}
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()


def enable(port: int | None = None, addr: str = "127.0.0.1") -> None:
    """Collect client metrics in this process; with ``port``, serve them over HTTP."""
    global enabled
    from prometheus_client import Counter, Histogram, start_http_server

    with _lock:
        if not _metrics:
            _metrics["duration"] = Histogram(
                "rpc_client_call_duration_seconds",
                "Time from sending a call to having its result, as the caller saw it.",
                ["service", "method", "outcome"], buckets=BUCKETS)
            _metrics["reconnections"] = Counter(
                "dirac_client_reconnections",
                "Connections of this process to the broker that were lost.")
    if port is not None:
        start_http_server(port, addr=addr)
    enabled = True


def outcome_of(result: Any) -> str:
    """``OK``, the name of the result's error code (DIRAC's or errno's), or ``ERROR``."""
    if isinstance(result, dict) and result.get("OK"):
        return "OK"
    code = result.get("Errno") if isinstance(result, dict) else None
    if not isinstance(code, int):
        return "ERROR"
    return dErrorCode.get(code) or errno.errorcode.get(code, "ERROR")


def observe_call(service: str, method: str, result: Any, seconds: float) -> None:
    """One call finished after ``seconds``."""
    if not enabled:
        return
    key = (service, method)
    if key not in _seen:
        with _lock:
            if len(_seen) >= MAX_SERIES:
                key = (service, "_other")
            else:
                _seen.add(key)
    _metrics["duration"].labels(key[0], key[1], outcome_of(result)).observe(max(0.0, seconds))


def count_reconnection() -> None:
    """The process lost its broker connection (it reconnects at the next call)."""
    if enabled:
        _metrics["reconnections"].inc()
