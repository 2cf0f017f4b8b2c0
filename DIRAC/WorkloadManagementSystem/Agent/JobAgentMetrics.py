"""Prometheus metrics of a job agent (``dirac-job-agent --metrics-port PORT``).

The same conventions as a worker's (diracmq/workers/metrics.py): names prefixed
``dirac_``, counters ending ``_total``, durations in seconds, and only bounded label
values: a job's outcome is one of DIRAC's final states (else ``other``), a call's
outcome ``OK`` or the symbolic name of its DIRAC error code (``EWMSNOMATCH`` is the
Matcher's "No match found").  Never a job ID, a site or a user.

Each :class:`JobAgentMetrics` has its own registry, so several agents in one process
(tests) do not clash; :meth:`serve` exposes it over HTTP.  docs/operations.md lists
every metric.
"""

from __future__ import annotations

from typing import Any

from diracmq.workers.metrics import BUCKETS, outcome_of
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS

__all__ = ["JobAgentMetrics"]

#: Job outcomes that are label values; anything else is counted as ``other``.
OUTCOMES = frozenset({JS.DONE, JS.FAILED, JS.KILLED})
#: Job durations: from a few seconds to the default 3-day wall-clock limit.
JOB_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 3 * 3600.0,
               6 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0)


class JobAgentMetrics:
    """The agent's counters and gauges; :class:`JobAgent` calls the hooks below."""

    def __init__(self, slots: int = 1) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.started = Counter("dirac_job_agent_jobs_started",
                               "Jobs this agent got from the Matcher and started.",
                               registry=reg)
        self.finished = Counter("dirac_job_agent_jobs_finished",
                                "Jobs this agent finished, by final status "
                                "(Done, Failed, Killed).", ["outcome"], registry=reg)
        self.duration = Histogram("dirac_job_agent_job_duration_seconds",
                                  "Time from a job's start on this agent to its final "
                                  "status, by final status.", ["outcome"],
                                  buckets=JOB_BUCKETS, registry=reg)
        self.running = Gauge("dirac_job_agent_jobs_running",
                             "Jobs running on this agent now.", registry=reg)
        self.slots = Gauge("dirac_job_agent_slots", "Jobs this agent runs at once at most.",
                           registry=reg)
        self.slots.set(slots)
        self.match_requests = Counter(
            "dirac_job_agent_match_requests",
            "Matcher.requestJob calls, by outcome: OK (a job), EWMSNOMATCH (no match), or "
            "the error code's name.", ["outcome"], registry=reg)
        self.match_duration = Histogram(
            "dirac_job_agent_match_request_duration_seconds",
            "Time a Matcher.requestJob call took.", buckets=BUCKETS, registry=reg)
        self.heartbeats = Counter(
            "dirac_job_agent_heartbeats",
            "JobStateUpdate.sendHeartBeat calls, by outcome (OK or the error code's name).",
            ["outcome"], registry=reg)
        self.kills = Counter("dirac_job_agent_kill_commands",
                             "Kill commands received with a heartbeat reply (a job killed "
                             "by its owner).", registry=reg)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve the metrics over HTTP (``/metrics``) on ``addr:port``, in a thread."""
        start_http_server(port, addr=addr, registry=self.registry)

    def match_request(self, result: Any, seconds: float) -> None:
        """One ``requestJob`` answered ``result`` after ``seconds``."""
        self.match_requests.labels(outcome_of(result)).inc()
        self.match_duration.observe(seconds)

    def job_started(self) -> None:
        """A matched job's thread started."""
        self.started.inc()
        self.running.inc()

    def job_finished(self, outcome: str, seconds: float) -> None:
        """A job ended with final status ``outcome`` after ``seconds`` on this agent."""
        label = outcome if outcome in OUTCOMES else "other"
        # running first, the finished count last: a scrape that sees the job finished
        # also sees it no longer running
        self.running.dec()
        self.duration.labels(label).observe(seconds)
        self.finished.labels(label).inc()

    def heartbeat(self, result: Any) -> None:
        """One ``sendHeartBeat`` answered ``result``."""
        self.heartbeats.labels(outcome_of(result)).inc()
        if isinstance(result, dict) and result.get("OK") and "Kill" in (result["Value"] or {}):
            self.kills.inc()
