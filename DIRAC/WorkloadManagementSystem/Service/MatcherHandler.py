"""``WorkloadManagement/Matcher``: hands waiting jobs to job agents (DIRAC's Matcher).

``requestJob(resourceDescription)`` is for callers with the ``GenericPilot`` (or
``Pilot``) property: the job agents; ``requestJobs(resourceDescription, count)`` fills
several free slots in one call.  The match itself is TaskQueueDB.matchAndGetJob(s)
(atomic: two agents never get the same job).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from DIRAC.WorkloadManagementSystem.Service.JobPolicy import (
    GENERIC_PILOT,
    JOB_ADMINISTRATOR,
    PILOT,
    JobDBHandlerMixin,
)

__all__ = ["MatcherHandler"]

_PILOTS = [GENERIC_PILOT, PILOT]


class MatcherHandler(JobDBHandlerMixin, RequestHandler):
    """Matching of resources (job agents) with waiting jobs."""

    taskQueueDB: ClassVar[TaskQueueDB | None] = None

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Open the JobDB and the TaskQueueDB."""
        result = super().initializeHandler(serviceInfoDict)
        if not result["OK"]:
            return result
        tq = TaskQueueDB(cls.jobDB)  # type: ignore[arg-type]
        result = tq.initialize()
        if not result["OK"]:
            return S_ERROR(f"cannot open the TaskQueueDB: {result['Message']}")
        cls.taskQueueDB = tq
        return S_OK()

    @property
    def tqDB(self) -> TaskQueueDB:
        """The TaskQueueDB (opened on first use if ``initializeHandler`` did not run)."""
        if type(self).taskQueueDB is None:
            result = type(self).initializeHandler({})
            if not result["OK"]:
                raise RuntimeError(result["Message"])
        return type(self).taskQueueDB  # type: ignore[return-value]

    types_requestJob: ClassVar[list] = [dict]
    auth_requestJob: ClassVar[list] = _PILOTS

    def export_requestJob(self, resourceDescription: dict) -> DReturnType:
        """A job for this resource: ``S_OK({"JobID", "JDL", "Owner", "OwnerGroup",
        "TQId", "matchingTime"})``, the job now Matched / "Assigned"; nothing to run:
        ``S_ERROR(EWMSNOMATCH, "No match found")``.

        ``resourceDescription``: ``Site``, ``CPUTime`` (seconds the resource can give),
        ``Tag`` (list), ``NumberOfProcessors``.
        """
        started = time.monotonic()
        who = self.getRemoteCredentials().get("username", "?")
        matched = self.tqDB.matchAndGetJob(resourceDescription, source=f"Matcher ({who})")
        if not matched["OK"]:
            return matched
        return S_OK(dict(matched["Value"], matchingTime=time.monotonic() - started))

    types_requestJobs: ClassVar[list] = [dict, int]
    auth_requestJobs: ClassVar[list] = _PILOTS

    def export_requestJobs(self, resourceDescription: dict, count: int) -> DReturnType:
        """Up to ``count`` jobs (1 to 1000) for a resource with that many free slots, in
        one call and one transaction (not in DIRAC: what a job agent filling several
        slots asks instead of ``count`` ``requestJob`` calls): ``S_OK([match, ...])``,
        each as ``requestJob`` gives it (the jobs now Matched); an empty list: nothing
        to run.  A match after the first is made for ``NumberOfProcessors`` one fewer
        per job already matched, as the next ``requestJob`` would be."""
        started = time.monotonic()
        who = self.getRemoteCredentials().get("username", "?")
        matched = self.tqDB.matchAndGetJobs(resourceDescription, count,
                                            source=f"Matcher ({who})")
        if not matched["OK"]:
            return matched
        took = time.monotonic() - started
        return S_OK([dict(m, matchingTime=took) for m in matched["Value"]])

    types_getActiveTaskQueues: ClassVar[list] = []
    auth_getActiveTaskQueues: ClassVar[list] = [*_PILOTS, JOB_ADMINISTRATOR]

    def export_getActiveTaskQueues(self) -> DReturnType:
        """``S_OK({TQId: {requirements..., "Jobs": n}})`` of the non-empty task queues."""
        return self.tqDB.getActiveTaskQueues()

    types_getMatchingTaskQueues: ClassVar[list] = [dict]
    auth_getMatchingTaskQueues: ClassVar[list] = [*_PILOTS, JOB_ADMINISTRATOR]

    def export_getMatchingTaskQueues(self, resourceDescription: dict) -> DReturnType:
        """The non-empty task queues a resource like this one could take jobs from."""
        return self.tqDB.getMatchingTaskQueues(resourceDescription)
