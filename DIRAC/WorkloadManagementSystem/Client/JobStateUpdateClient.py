"""Client of ``WorkloadManagement/JobStateUpdate``: report a running job's state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from diracmq.broker.returnvalues import DReturnType

from DIRAC.Core.Base.Client import Client, createClient

__all__ = ["JobStateUpdateClient"]


@createClient("WorkloadManagement/JobStateUpdate")
class JobStateUpdateClient(Client):
    """Set job status, application status, parameters; send heartbeats."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer("WorkloadManagement/JobStateUpdate")

    def setJobStatus(self, jobID: int | str, status: str = "", minorStatus: str = "",
                     source: str = "Unknown", datetime: dt.datetime | str | None = None,
                     force: bool = False, timeout: float | None = None) -> DReturnType:
        """Set status and minor status ("" leaves either as it is)."""
        return self.executeRPC("setJobStatus", jobID, status, minorStatus, source, datetime,
                               force, timeout=timeout)

    def setJobStatusBulk(self, jobID: int | str, statusDict: dict, force: bool = False,
                         timeout: float | None = None) -> DReturnType:
        """Apply ``{date: {Status, MinorStatus, ApplicationStatus, Source}}`` in date order."""
        return self.executeRPC("setJobStatusBulk", jobID, statusDict, force, timeout=timeout)

    def setJobApplicationStatus(self, jobID: int | str, appStatus: str,
                                source: str = "Unknown",
                                timeout: float | None = None) -> DReturnType:
        """Set the application status."""
        return self.executeRPC("setJobApplicationStatus", jobID, appStatus, source,
                               timeout=timeout)

    def sendHeartBeat(self, jobID: int | str, dynamicData: dict, staticData: dict,
                      timeout: float | None = None) -> DReturnType:
        """Heartbeat of a running job: ``S_OK({command: argument})``."""
        return self.executeRPC("sendHeartBeat", jobID, dynamicData, staticData,
                               timeout=timeout)

    def reportJobs(self, reports: dict, timeout: float | None = None) -> DReturnType:
        """Several jobs' parameters, statuses and sandboxes in one call (the job agent's
        end of a job): ``reports`` is ``{jobID: {"Parameters": [[name, value]],
        "Status": {date: {...}}, "Sandboxes": [[name, "Output"]]}}``;
        ``S_OK({"Successful": [jobIDs], "Failed": {jobID: message}})``."""
        return self.executeRPC("reportJobs", reports, timeout=timeout)
