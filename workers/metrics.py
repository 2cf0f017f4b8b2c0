"""Prometheus metrics of a worker process (``dirac-worker --metrics-port PORT``).

Off unless :func:`enable` (or :func:`enable_multiprocess` in a ``--processes N``
child) was called: every function here then returns at once, so a worker that
nobody scrapes pays one attribute test per hook.

Names follow Prometheus' conventions and OpenTelemetry's RPC semantic conventions
(``rpc.server.call.duration`` becomes ``rpc_server_call_duration_seconds``); what
only this project has is prefixed ``dirac_``.  Every label takes a bounded set of
values: a method name from the wire is only a label once the handler really exports
it (else ``_unknown``), and an outcome is ``OK``, the symbolic name of a DIRAC error
code (``ENOAUTH``...) or ``ERROR``; never a job ID, a user or a message text.

With ``--processes N`` the supervisor serves one endpoint for all its children with
prometheus_client's multiprocess mode: :func:`prepare_multiprocess` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the children start (they
inherit it and write their samples there), and :func:`serve_multiprocess` serves
the sum.  docs/operations.md lists every metric.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from diracmq.broker.derrno import dErrorCode

__all__ = [
    "EVENT_METRICS",
    "count",
    "enable",
    "enabled",
    "handler_busy",
    "in_flight",
    "observe_call",
    "outcome_of",
    "prepare_multiprocess",
    "reply_cache_size",
    "serve_multiprocess",
]

#: Worker counters (``Worker.counters`` names) that get a metric of their own.
EVENT_METRICS: dict[str, tuple[str, str]] = {
    "expired": ("dirac_worker_requests_expired_total",
                "Requests that arrived after their deadline and were not run."),
    "duplicates": ("dirac_worker_requests_duplicated_total",
                   "Repeated requests answered from the reply cache without running."),
    "parked": ("dirac_worker_requests_parked_total",
               "Requests given up after workers died running them (parking queue)."),
    "malformed": ("dirac_worker_requests_undecodable_total",
                  "Requests whose body or fields could not be decoded (EMQDECODE reply)."),
    "retried": ("dirac_worker_requests_retried_total",
                "Redelivered requests sent round the retry loop."),
    "reconnections": ("dirac_worker_reconnections_total",
                      "Times the worker lost its broker connection and reconnected."),
}
#: The other counters, as ``dirac_worker_events_total{event=...}`` (names set in code).
OTHER_EVENTS = frozenset({"no_reply_to", "foreign_reply_to", "unreplyable",
                          "reply_unroutable", "internal_errors", "io_takeovers"})

#: Histogram buckets (seconds): from a fast inline call to DIRAC's 600 s timeout.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0, 60.0, 120.0, 600.0)

enabled = False
_metrics: dict[str, Any] = {}
#: Labelled children already made (the label sets are bounded, see the module doc).
_children: dict[Any, Any] = {}
_multiproc_dir: str | None = None


def _build() -> None:
    """Create the metric objects (once): after PROMETHEUS_MULTIPROC_DIR is settled."""
    from prometheus_client import Counter, Gauge, Histogram

    if _metrics:
        return
    _metrics["duration"] = Histogram(
        "rpc_server_call_duration_seconds",
        "Time a worker took to serve one request, from decoding to the encoded reply.",
        ["system", "service", "method", "outcome"], buckets=BUCKETS)
    # livesum: in multiprocess mode the gauge of a dead child no longer counts.
    _metrics["in_flight"] = Gauge(
        "dirac_worker_calls_in_flight", "Requests being served right now.",
        ["system", "service"], multiprocess_mode="livesum")
    _metrics["busy"] = Gauge(
        "dirac_worker_handler_threads_busy", "Handler threads running a request.",
        multiprocess_mode="livesum")
    _metrics["threads"] = Gauge(
        "dirac_worker_handler_threads", "Handler threads configured.",
        multiprocess_mode="livesum")
    _metrics["cache"] = Gauge(
        "dirac_worker_reply_cache_bytes", "Bytes of replies kept to answer repeated requests.",
        multiprocess_mode="livesum")
    for key, (name, text) in EVENT_METRICS.items():
        _metrics[key] = Counter(name.removesuffix("_total"), text)
    _metrics["events"] = Counter("dirac_worker_events", "Other worker events, by name.",
                                 ["event"])


def enable(port: int | None, threads: int = 0, addr: str = "0.0.0.0") -> None:
    """Collect metrics in this process; with ``port``, serve them over HTTP there.

    In a ``--processes N`` child (``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor),
    pass ``port=None``: the supervisor serves them.
    """
    global enabled
    _build()
    if threads:
        _metrics["threads"].set(threads)
    if port is not None:
        from prometheus_client import start_http_server

        start_http_server(port, addr=addr)
    enabled = True


def prepare_multiprocess() -> str:
    """Supervisor, before starting children: a fresh PROMETHEUS_MULTIPROC_DIR (returned)."""
    global _multiproc_dir
    _multiproc_dir = tempfile.mkdtemp(prefix="dirac-worker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _multiproc_dir
    return _multiproc_dir


def serve_multiprocess(port: int, addr: str = "0.0.0.0") -> None:
    """Supervisor: serve the sum of the children's metrics on ``port``."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    start_http_server(port, addr=addr, registry=registry)


def child_exited(pid: int) -> None:
    """Supervisor: a child died; its live gauges stop counting."""
    if _multiproc_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped in prometheus_client


def cleanup_multiprocess() -> None:
    """Supervisor, at exit: remove the samples directory."""
    if _multiproc_dir is not None:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


def outcome_of(result: Any) -> str:
    """The ``outcome`` label of a result: ``OK``, an error code's name, or ``ERROR``."""
    if isinstance(result, dict) and result.get("OK"):
        return "OK"
    code = result.get("Errno") if isinstance(result, dict) else None
    return dErrorCode.get(code, "ERROR") if isinstance(code, int) else "ERROR"


def observe_call(service: str, method: str | None, result: Any, seconds: float) -> None:
    """One request served: ``method`` None when the handler exports no such method."""
    if not enabled:
        return
    key = (service, method, outcome_of(result))
    child = _children.get(key)
    if child is None:  # labels() costs a lock and a few lookups: once per label set
        system, _, name = service.partition("/")
        child = _children[key] = _metrics["duration"].labels(system, name,
                                                             method or "_unknown", key[2])
    child.observe(seconds)


def in_flight(service: str, delta: int) -> None:
    """A request to ``service`` started (+1) or ended (-1)."""
    if enabled:
        child = _children.get(service)
        if child is None:
            system, _, name = service.partition("/")
            child = _children[service] = _metrics["in_flight"].labels(system, name)
        child.inc(delta)


def handler_busy(delta: int) -> None:
    """A handler thread took (+1) or finished (-1) a request."""
    if enabled:
        _metrics["busy"].inc(delta)


def reply_cache_size(nbytes: int) -> None:
    """The reply cache now holds ``nbytes``."""
    if enabled:
        _metrics["cache"].set(nbytes)


def count(event: str) -> None:
    """One worker event (a ``Worker.counters`` name); names without a metric are ignored."""
    if not enabled:
        return
    metric = _metrics.get(event) if event in EVENT_METRICS else None
    if metric is not None:
        metric.inc()
    elif event in OTHER_EVENTS:
        _metrics["events"].labels(event).inc()
