"""Client of ``WorkloadManagement/JobManager``: submit and control jobs."""

from __future__ import annotations

from typing import Any

from diracmq.broker.returnvalues import DReturnType

from DIRAC.Core.Base.Client import Client, createClient

__all__ = ["JobManagerClient"]


@createClient("WorkloadManagement/JobManager")
class JobManagerClient(Client):
    """Submit jobs (``submitJob(jdl)``) and kill, delete, reschedule or reset them.

    Job ID arguments may be an int, a numeric string or a list of those.  A partial
    failure is an S_ERROR with ``InvalidJobIDs``, ``NonauthorizedJobIDs`` and
    ``FailedJobIDs`` keys.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer("WorkloadManagement/JobManager")

    def submitJob(self, jdl: str, jobDescriptionObject: Any = None,
                  timeout: float | None = None) -> DReturnType:
        """Submit a JDL: ``S_OK(jobID)``, or ``S_OK([jobIDs])`` for a parametric one.

        ``jobDescriptionObject`` (DIRAC's sandbox companion) is accepted and ignored.
        """
        del jobDescriptionObject
        return self.executeRPC("submitJob", jdl, timeout=timeout)

    def killJob(self, jobIDs: Any, force: bool = False,
                timeout: float | None = None) -> DReturnType:
        """Kill jobs."""
        return self.executeRPC("killJob", jobIDs, force, timeout=timeout)

    def deleteJob(self, jobIDs: Any, force: bool = False,
                  timeout: float | None = None) -> DReturnType:
        """Delete jobs (a running job is killed first)."""
        return self.executeRPC("deleteJob", jobIDs, force, timeout=timeout)

    def rescheduleJob(self, jobIDs: Any, timeout: float | None = None) -> DReturnType:
        """Send jobs back to Received."""
        return self.executeRPC("rescheduleJob", jobIDs, timeout=timeout)

    def resetJob(self, jobIDs: Any, timeout: float | None = None) -> DReturnType:
        """Reschedule jobs with their reschedule counter reset."""
        return self.executeRPC("resetJob", jobIDs, timeout=timeout)
