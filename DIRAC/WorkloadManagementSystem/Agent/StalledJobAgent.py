"""DIRAC's StalledJobAgent: jobs whose job agent went silent become Stalled, then Failed.

* ``Running`` (or ``Completing``) with no heartbeat (nor status change) for
  ``stalledTime`` seconds -> ``Stalled`` / "Job stalled: pilot not running";
* ``Stalled`` for ``failedTime`` more seconds -> ``Failed`` / "Stalling for more than
  <failedTime> sec";
* ``Matched`` for ``matchedTime`` seconds without starting -> ``Failed`` / "Matched
  job not started" (the job agent died between matching and the first report).

A heartbeat brings a Stalled job back to Running (JobDB.setHeartBeat).  Every change
is the JobDB's conditional status update, so several agents running at once (one per
Optimizers worker) never change a job twice.  Settings: ``DIRAC_WMS_STALLED_TIME``
(default 7200 s, DIRAC's 2 hours), ``DIRAC_WMS_FAILED_TIME`` (default 21600 s),
``DIRAC_WMS_MATCHED_TIME`` (default 7200 s).
"""

from __future__ import annotations

import datetime as dt
import logging
import os

import sqlalchemy as sa
from diracmq.broker.returnvalues import S_OK, DReturnType, SErrorException

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, _now, jobsTable

__all__ = ["StalledJobAgent"]

log = logging.getLogger(__name__)

STALLED_MINOR = "Job stalled: pilot not running"


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


class StalledJobAgent:
    """One pass (:meth:`execute`) marks what has been silent too long."""

    def __init__(self, jobDB: JobDB, stalledTime: float | None = None,
                 failedTime: float | None = None, matchedTime: float | None = None) -> None:
        self.db = jobDB
        self.stalledTime = stalledTime if stalledTime is not None else \
            _seconds("DIRAC_WMS_STALLED_TIME", 7200)
        self.failedTime = failedTime if failedTime is not None else \
            _seconds("DIRAC_WMS_FAILED_TIME", 21600)
        self.matchedTime = matchedTime if matchedTime is not None else \
            _seconds("DIRAC_WMS_MATCHED_TIME", 7200)

    def _silent(self, statuses: tuple[str, ...], seconds: float) -> list[int]:
        t = jobsTable.c
        cutoff = _now() - dt.timedelta(seconds=seconds)
        last = sa.func.coalesce(t.HeartBeatTime, t.LastUpdateTime)
        stmt = sa.select(t.JobID).where(t.Status.in_(statuses),
                                        sa.or_(last < cutoff, last.is_(None)),
                                        t.LastUpdateTime < cutoff).limit(1000)
        return [int(i) for i in self.db._run(lambda conn: list(conn.scalars(stmt)),
                                              write=False)]

    def _mark(self, jobIDs: list[int], expected: tuple[str, ...], status: str, minor: str
              ) -> int:
        done = 0
        for job_id in jobIDs:
            def change(conn: sa.Connection, job_id: int = job_id) -> bool:
                job = self.db._lock(conn, job_id)
                if job["Status"] not in expected:
                    return False  # a heartbeat or an update came first
                self.db._change(conn, job, status=status, minor=minor,
                                source="StalledJobAgent")
                return True
            try:
                done += bool(self.db._run(change))
            except SErrorException as exc:
                log.warning("job %s: %s", job_id, exc.result.get("Message"))
        return done

    def execute(self) -> DReturnType:
        """One pass: ``S_OK({"Stalled": n, "Failed": n})``."""
        stalled = self._mark(self._silent((JS.RUNNING, JS.COMPLETING), self.stalledTime),
                             (JS.RUNNING, JS.COMPLETING), JS.STALLED, STALLED_MINOR)
        failed = self._mark(self._silent((JS.STALLED,), self.failedTime), (JS.STALLED,),
                            JS.FAILED, f"Stalling for more than {self.failedTime:g} sec")
        failed += self._mark(self._silent((JS.MATCHED,), self.matchedTime), (JS.MATCHED,),
                             JS.FAILED, "Matched job not started")
        if stalled or failed:
            log.info("StalledJobAgent: %d jobs Stalled, %d Failed", stalled, failed)
        return S_OK({"Stalled": stalled, "Failed": failed})
