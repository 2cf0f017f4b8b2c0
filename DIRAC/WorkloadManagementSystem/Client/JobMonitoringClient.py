"""Client of ``WorkloadManagement/JobMonitoring``: read-only queries about jobs.

Every method of the service is reachable as ``JobMonitoringClient().<method>(...)``;
the common ones are spelled out below with DIRAC's defaults.
"""

from __future__ import annotations

from typing import Any

from diracmq.broker.returnvalues import DReturnType

from DIRAC.Core.Base.Client import Client, createClient

__all__ = ["JobMonitoringClient"]


@createClient("WorkloadManagement/JobMonitoring")
class JobMonitoringClient(Client):
    """Query jobs, their attributes, states and logging records."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer("WorkloadManagement/JobMonitoring")

    def getJobs(self, attrDict: dict | None = None, cutDate: Any = None,
                timeout: float | None = None) -> DReturnType:
        """IDs of the jobs matching ``attrDict`` (``{"Owner": name, "Status": [...]}``,
        keys in any case), last updated on or after ``cutDate``."""
        return self.executeRPC("getJobs", attrDict, cutDate, timeout=timeout)

    def getJobAttributes(self, jobID: int | str, attrList: list[str] | None = None,
                         timeout: float | None = None) -> DReturnType:
        """``{attribute: value}`` of one job (all attributes when ``attrList`` is None)."""
        return self.executeRPC("getJobAttributes", jobID, attrList, timeout=timeout)

    def getJobParameters(self, jobIDs: Any, parName: Any = None,
                         timeout: float | None = None) -> DReturnType:
        """``{jobID: {name: value}}``."""
        return self.executeRPC("getJobParameters", jobIDs, parName, timeout=timeout)

    def getJobPageSummaryWeb(self, selectDict: dict | None, sortList: list | None,
                             startItem: int, maxItems: int, selectJobs: bool = True,
                             timeout: float | None = None) -> DReturnType:
        """A page of jobs: ``{ParameterNames, Records, TotalRecords, Extras}``."""
        return self.executeRPC("getJobPageSummaryWeb", selectDict, sortList, startItem,
                               maxItems, selectJobs, timeout=timeout)
