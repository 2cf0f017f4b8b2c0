"""``Optimizers/OptimizationMind``: the process that optimizes jobs (``dirac-worker Optimizers``).

DIRAC's OptimizationMind hands jobs to its optimizers; here every Optimizers worker
process runs, from ``initializeHandler`` on, in background threads:

* a consumer of the job announcements (Utilities/OptimizerQueue.py) running the
  chain (Executor/Optimizers.py) on each job, acknowledging after;
* a sweep every ``DIRAC_WMS_OPTIMIZER_SWEEP`` seconds (default 30): jobs the JobDB
  says still need optimizing (Received, or Checking past the lease) are optimized,
  so a lost announcement or a restarted worker loses nothing; the same thread runs
  the StalledJobAgent, and refreshes SQLite's statistics when the number of jobs has
  doubled or halved (JobDB.refreshStatistics).

Its RPC methods report and trigger: ``getStats``, ``optimizeJobs`` (JobAdministrator).
Scale it like any worker: ``dirac-worker Optimizers --processes 2`` or more commands.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from diracmq.broker.config import Settings
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.WorkloadManagementSystem.Agent.StalledJobAgent import StalledJobAgent
from DIRAC.WorkloadManagementSystem.DB.JobDB import getJobDB
from DIRAC.WorkloadManagementSystem.Executor.Optimizers import (
    JOBS_PER_TRANSACTION,
    JobOptimizer,
)
from DIRAC.WorkloadManagementSystem.Utilities import OptimizerQueue
from DIRAC.WorkloadManagementSystem.Utilities.JobIDs import parseJobIDs

__all__ = ["OptimizationMindHandler"]

log = logging.getLogger(__name__)


def _interval() -> float:
    try:
        return max(0.1, float(os.environ.get("DIRAC_WMS_OPTIMIZER_SWEEP") or 30))
    except ValueError:
        return 30.0


class OptimizationMindHandler(RequestHandler):
    """Runs the optimizer chain and the StalledJobAgent in this worker process."""

    optimizer: ClassVar[JobOptimizer | None] = None
    stalled: ClassVar[StalledJobAgent | None] = None
    stats: ClassVar[dict[str, int]] = {}
    _stop: ClassVar[threading.Event] = threading.Event()
    _threads: ClassVar[list[threading.Thread]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Open the databases and start the consumer and the sweep."""
        del serviceInfoDict
        db = getJobDB()
        optimizer = JobOptimizer(db)
        result = optimizer.initialize()
        if not result["OK"]:
            return S_ERROR(f"cannot open the JobDB at {db!r}: {result['Message']}")
        cls.optimizer = optimizer
        cls.stalled = StalledJobAgent(db)
        cls.stats = {"Waiting": 0, "Failed": 0, "Skipped": 0, "Errors": 0, "Sweeps": 0,
                     "Stalled": 0}
        cls._stop = threading.Event()
        settings = Settings.load()
        cls._threads = [
            threading.Thread(target=OptimizerQueue.consume, name="optimizer-consumer",
                             args=(settings, cls._handle, cls._stop), daemon=True),
            threading.Thread(target=cls._sweep, name="optimizer-sweep", daemon=True),
        ]
        for thread in cls._threads:
            thread.start()
        atexit.register(cls._shutdown)
        return S_OK()

    @classmethod
    def _shutdown(cls) -> None:
        cls._stop.set()
        for thread in cls._threads:
            thread.join(timeout=5)

    @classmethod
    def _count(cls, key: str, n: int = 1) -> None:
        with cls._lock:
            cls.stats[key] = cls.stats.get(key, 0) + n

    @classmethod
    def _handle(cls, jobIDs: Sequence[int]) -> bool:
        """Optimize the announced jobs; False (put back) on a database error."""
        assert cls.optimizer is not None
        ok = True
        ids = list(jobIDs)
        # several jobs per transaction (optimizeJobs), but not all of a big sweep at once:
        # a stop request is honoured between chunks
        for start in range(0, len(ids), JOBS_PER_TRANSACTION):
            if cls._stop.is_set():
                return False
            outcomes = cls.optimizer.optimizeJobs(ids[start:start + JOBS_PER_TRANSACTION])
            for result in outcomes["Value"].values():
                if not result["OK"]:
                    cls._count("Errors")
                    ok = False
                else:
                    cls._count({"Waiting": "Waiting", "Failed": "Failed"}.get(
                        result["Value"], "Skipped"))
        return ok

    @classmethod
    def _sweep(cls) -> None:
        interval = _interval()
        while not cls._stop.is_set():
            try:
                assert cls.optimizer is not None and cls.stalled is not None
                pending = cls.optimizer.jobsToRecover()
                if pending["OK"] and pending["Value"]:
                    log.info("sweep: %d jobs to optimize found in the JobDB",
                             len(pending["Value"]))
                    cls._handle(pending["Value"])
                marked = cls.stalled.execute()
                if marked["OK"]:
                    cls._count("Stalled", marked["Value"]["Stalled"])
                cls.optimizer.db.refreshStatistics()  # SQLite's planner statistics
                cls._count("Sweeps")
            except Exception:
                log.exception("optimizer sweep failed; next one in %gs", interval)
            cls._stop.wait(interval)

    types_getStats: ClassVar[list] = []
    auth_getStats: ClassVar[list] = ["authenticated"]

    def export_getStats(self) -> DReturnType:
        """What this worker process did: jobs sent to Waiting, Failed, skipped, sweeps."""
        with self._lock:
            return S_OK(dict(self.stats))

    types_optimizeJobs: ClassVar[list] = [[int, str, list, tuple]]
    auth_optimizeJobs: ClassVar[list] = ["JobAdministrator"]

    def export_optimizeJobs(self, jobIDs: Any) -> DReturnType:
        """Optimize these jobs now: ``S_OK({jobID: outcome})`` (outcome: Waiting,
        Failed, or None when the job was not waiting for optimization)."""
        valid, invalid = parseJobIDs(jobIDs)
        if invalid or not valid:
            return S_ERROR(f"invalid job IDs: {invalid or jobIDs!r}")
        assert self.optimizer is not None
        out = {}
        for job_id in valid:
            result = self.optimizer.optimizeJob(job_id)
            if not result["OK"]:
                return result
            out[job_id] = result["Value"]
        return S_OK(out)
