"""``WorkloadManagement/JobMonitoring``: read-only queries about jobs.

Condition dicts (``attrDict``, ``condDict``, ``selectDict``) map a job attribute
(any case: ``{"owner": "alice"}`` works) to a value (equality) or a list (any of);
``cutDate`` selects jobs whose LastUpdateTime is on or after it.  Results keyed by
job are ``{jobID (int): {...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from diracmq.broker.derrno import EVALUE, EWMSUKN
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.WorkloadManagementSystem.Service.JobPolicy import (
    JobDBHandlerMixin,
    monitoringRestriction,
    singleJobID,
)
from DIRAC.WorkloadManagementSystem.Utilities.JobIDs import parseJobIDs

__all__ = ["JobMonitoringHandler"]

_JOB_IDS = [int, str, list, tuple]
_JOB_ID = [int, str]
_DICT_OR_NONE = [dict, type(None)]
_AUTH = ["authenticated"]


def _jobIDs(value: Any) -> DReturnType:
    valid, invalid = parseJobIDs(value)
    if invalid:
        return S_ERROR(EVALUE, f"Invalid job ID(s) {invalid}: expected positive integers")
    return S_OK(valid)


def _conditions(value: Any, name: str = "condition dict") -> DReturnType:
    if value is None:
        return S_OK({})
    if not isinstance(value, dict):
        return S_ERROR(EVALUE, f"{name} must be a dict, not {type(value).__name__}")
    return S_OK(value)


class JobMonitoringHandler(JobDBHandlerMixin, RequestHandler):
    """Answers queries about jobs: IDs, attributes, states, logging records, counters."""

    # -------------------------------------------------------------- helpers
    def _selected(self, jobIDs: Any, attributes: list[str] | None) -> DReturnType:
        ids = _jobIDs(jobIDs)
        if not ids["OK"]:
            return ids
        return self.db.getJobsAttributes(ids["Value"], attributes)

    def _distinct(self, attribute: str, condDict: Any = None, cutDate: Any = None
                  ) -> DReturnType:
        conditions = _conditions(condDict)
        if not conditions["OK"]:
            return conditions
        return self.db.getDistinctJobAttributes(attribute, conditions["Value"], cutDate)

    # ------------------------------------------------------------ job lists
    types_getJobs: ClassVar[list] = []
    auth_getJobs: ClassVar[list] = _AUTH

    def export_getJobs(self, attrDict: dict | None = None, cutDate: Any = None) -> DReturnType:
        """IDs (ints, ascending) of the jobs matching ``attrDict``, updated since ``cutDate``."""
        conditions = _conditions(attrDict, "attrDict")
        if not conditions["OK"]:
            return conditions
        return self.db.selectJobs(conditions["Value"], newer=cutDate)

    types_getCounters: ClassVar[list] = [list]
    auth_getCounters: ClassVar[list] = _AUTH

    def export_getCounters(self, attrList: list, attrDict: dict | None = None,
                           cutDate: Any = None) -> DReturnType:
        """``[({attr: value, ...}, count), ...]``: job counts grouped by ``attrList``."""
        conditions = _conditions(attrDict, "attrDict")
        if not conditions["OK"]:
            return conditions
        return self.db.getCounters("Jobs", attrList, conditions["Value"], newer=cutDate)

    types_getJobStats: ClassVar[list] = [str, _DICT_OR_NONE]
    auth_getJobStats: ClassVar[list] = _AUTH

    def export_getJobStats(self, attribute: str, selectDict: dict | None) -> DReturnType:
        """``{value: count}``: how many matching jobs have each value of ``attribute``."""
        conditions = _conditions(selectDict, "selectDict")
        if not conditions["OK"]:
            return conditions
        result = self.db.getCounters("Jobs", [attribute], conditions["Value"])
        if not result["OK"]:
            return result
        return S_OK({next(iter(values.values())): count for values, count in result["Value"]})

    # ------------------------------------------------------- per-job states
    types_getJobsStatus: ClassVar[list] = [_JOB_IDS]
    auth_getJobsStatus: ClassVar[list] = _AUTH

    def export_getJobsStatus(self, jobIDs: Any) -> DReturnType:
        """``{jobID: {"Status": ...}}``."""
        return self._selected(jobIDs, ["Status"])

    types_getJobsMinorStatus: ClassVar[list] = [_JOB_IDS]
    auth_getJobsMinorStatus: ClassVar[list] = _AUTH

    def export_getJobsMinorStatus(self, jobIDs: Any) -> DReturnType:
        """``{jobID: {"MinorStatus": ...}}``."""
        return self._selected(jobIDs, ["MinorStatus"])

    types_getJobsApplicationStatus: ClassVar[list] = [_JOB_IDS]
    auth_getJobsApplicationStatus: ClassVar[list] = _AUTH

    def export_getJobsApplicationStatus(self, jobIDs: Any) -> DReturnType:
        """``{jobID: {"ApplicationStatus": ...}}``."""
        return self._selected(jobIDs, ["ApplicationStatus"])

    types_getJobsSites: ClassVar[list] = [_JOB_IDS]
    auth_getJobsSites: ClassVar[list] = _AUTH

    def export_getJobsSites(self, jobIDs: Any) -> DReturnType:
        """``{jobID: {"Site": ...}}``."""
        return self._selected(jobIDs, ["Site"])

    types_getJobsStates: ClassVar[list] = [_JOB_IDS]
    auth_getJobsStates: ClassVar[list] = _AUTH

    def export_getJobsStates(self, jobIDs: Any) -> DReturnType:
        """``{jobID: {"Status", "MinorStatus", "ApplicationStatus"}}``."""
        return self._selected(jobIDs, ["Status", "MinorStatus", "ApplicationStatus"])

    # ----------------------------------------------------- job attributes
    types_getJobSummary: ClassVar[list] = [_JOB_ID]
    auth_getJobSummary: ClassVar[list] = _AUTH

    def export_getJobSummary(self, jobID: Any) -> DReturnType:
        """Every attribute of one job; S_ERROR if there is no such job."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        result = self.db.getJobAttributes(job_id["Value"])
        if result["OK"] and not result["Value"]:
            return S_ERROR(EWMSUKN, f"Job {job_id['Value']} not found")
        return result

    types_getJobsSummary: ClassVar[list] = [_JOB_IDS]
    auth_getJobsSummary: ClassVar[list] = _AUTH

    def export_getJobsSummary(self, jobIDs: Any) -> DReturnType:
        """``{jobID: {every attribute}}`` for the jobs that exist."""
        return self._selected(jobIDs, None)

    types_getJobAttributes: ClassVar[list] = [_JOB_ID]
    auth_getJobAttributes: ClassVar[list] = _AUTH

    def export_getJobAttributes(self, jobID: Any, attrList: list | None = None) -> DReturnType:
        """``{attribute: value}`` of one job (all attributes, or those of ``attrList``);
        ``{}`` when there is no such job, as in DIRAC."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        if attrList is not None and not isinstance(attrList, (list, tuple)):
            return S_ERROR(EVALUE, f"attrList must be a list, not {type(attrList).__name__}")
        return self.db.getJobAttributes(job_id["Value"], attrList)

    types_getJobAttribute: ClassVar[list] = [_JOB_ID, str]
    auth_getJobAttribute: ClassVar[list] = _AUTH

    def export_getJobAttribute(self, jobID: Any, attribute: str) -> DReturnType:
        """The value of one attribute of one job (None when there is no such job)."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.getJobAttribute(job_id["Value"], attribute)

    types_getJobLoggingInfo: ClassVar[list] = [_JOB_ID]
    auth_getJobLoggingInfo: ClassVar[list] = _AUTH

    def export_getJobLoggingInfo(self, jobID: Any) -> DReturnType:
        """``[(Status, MinorStatus, ApplicationStatus, StatusTime, Source), ...]`` oldest first;
        StatusTime is a naive UTC datetime with microseconds."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.getJobLoggingInfo(job_id["Value"])

    types_getJobParameters: ClassVar[list] = [_JOB_IDS]
    auth_getJobParameters: ClassVar[list] = _AUTH

    def export_getJobParameters(self, jobIDs: Any, parName: Any = None) -> DReturnType:
        """``{jobID: {name: value}}`` (all parameters, or ``parName``: a name or a list)."""
        ids = _jobIDs(jobIDs)
        if not ids["OK"]:
            return ids
        return self.db.getJobParameters(ids["Value"], parName)

    types_getJobParameter: ClassVar[list] = [_JOB_ID, str]
    auth_getJobParameter: ClassVar[list] = _AUTH

    def export_getJobParameter(self, jobID: Any, parName: str) -> DReturnType:
        """``{parName: value}`` of one job (``{}`` when not set)."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        result = self.db.getJobParameters([job_id["Value"]], [parName])
        if not result["OK"]:
            return result
        return S_OK(result["Value"].get(job_id["Value"], {}))

    types_getJobJDL: ClassVar[list] = [_JOB_ID]
    auth_getJobJDL: ClassVar[list] = _AUTH

    def export_getJobJDL(self, jobID: Any, original: bool = False) -> DReturnType:
        """The job's JDL as stored (with JobID, Owner, OwnerGroup set by the server)."""
        del original
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.getJobJDL(job_id["Value"])

    # ------------------------------------------------- distinct values
    types_getOwners: ClassVar[list] = []
    auth_getOwners: ClassVar[list] = _AUTH

    def export_getOwners(self, condDict: dict | None = None, newer: Any = None) -> DReturnType:
        """Distinct job owners."""
        return self._distinct("Owner", condDict, newer)

    types_getOwnerGroup: ClassVar[list] = []
    auth_getOwnerGroup: ClassVar[list] = _AUTH

    def export_getOwnerGroup(self) -> DReturnType:
        """Distinct owner groups."""
        return self._distinct("OwnerGroup")

    types_getSites: ClassVar[list] = []
    auth_getSites: ClassVar[list] = _AUTH

    def export_getSites(self) -> DReturnType:
        """Distinct job sites."""
        return self._distinct("Site")

    types_getStates: ClassVar[list] = []
    auth_getStates: ClassVar[list] = _AUTH

    def export_getStates(self) -> DReturnType:
        """Distinct job statuses in use."""
        return self._distinct("Status")

    types_getMinorStates: ClassVar[list] = []
    auth_getMinorStates: ClassVar[list] = _AUTH

    def export_getMinorStates(self) -> DReturnType:
        """Distinct minor statuses in use."""
        return self._distinct("MinorStatus")

    types_getApplicationStates: ClassVar[list] = []
    auth_getApplicationStates: ClassVar[list] = _AUTH

    def export_getApplicationStates(self, condDict: dict | None = None, older: Any = None,
                                    newer: Any = None) -> DReturnType:
        """Distinct application statuses in use."""
        del older
        return self._distinct("ApplicationStatus", condDict, newer)

    types_getJobTypes: ClassVar[list] = []
    auth_getJobTypes: ClassVar[list] = _AUTH

    def export_getJobTypes(self) -> DReturnType:
        """Distinct job types."""
        return self._distinct("JobType")

    types_getJobGroups: ClassVar[list] = []
    auth_getJobGroups: ClassVar[list] = _AUTH

    def export_getJobGroups(self, condDict: dict | None = None, cutDate: Any = None
                            ) -> DReturnType:
        """Distinct job groups (of the jobs matching ``condDict``, since ``cutDate``)."""
        return self._distinct("JobGroup", condDict, cutDate)

    # --------------------------------------------------------------- web
    types_getJobPageSummaryWeb: ClassVar[list] = [_DICT_OR_NONE, [list, tuple, type(None)],
                                                  int, int]
    auth_getJobPageSummaryWeb: ClassVar[list] = _AUTH

    def export_getJobPageSummaryWeb(self, selectDict: dict | None, sortList: list | None,
                                    startItem: int, maxItems: int,
                                    selectJobs: bool = True) -> DReturnType:
        """A page of jobs: ``{ParameterNames, Records, TotalRecords, Extras}``.

        ``Records`` are lists in ``ParameterNames`` order (native types: ints,
        datetimes); ``Extras`` counts the selected jobs per status.  Users see their
        own jobs only, unless JobAdministrator/JobMonitor (JobSharing: their group's).
        ``sortList`` is ``[[attribute, "ASC"|"DESC"], ...]``.
        """
        del selectJobs
        conditions = _conditions(selectDict, "selectDict")
        if not conditions["OK"]:
            return conditions
        if startItem < 0 or maxItems < 0:
            return S_ERROR(EVALUE, "startItem and maxItems must not be negative")
        return self.db.getSummaryWeb(conditions["Value"], sortList, startItem, maxItems,
                                     restrict=monitoringRestriction(self.getRemoteCredentials()))

    types_getJobPageCountersWeb: ClassVar[list] = [_DICT_OR_NONE, [list, tuple]]
    auth_getJobPageCountersWeb: ClassVar[list] = _AUTH

    def export_getJobPageCountersWeb(self, selectDict: dict | None,
                                     attrList: list) -> DReturnType:
        """``{attribute: {value: count}}`` over the jobs the caller may see in the web
        summary (the same restriction as getJobPageSummaryWeb): the values a job
        monitor offers in its filters, and its charts (not in DIRAC).  A ``FromDate``
        in ``selectDict`` counts only jobs updated since then."""
        conditions = _conditions(selectDict, "selectDict")
        if not conditions["OK"]:
            return conditions
        if not attrList or len(attrList) > 20 or not all(isinstance(a, str) for a in attrList):
            return S_ERROR(EVALUE, "attrList must be a list of 1 to 20 attribute names")
        selected = dict(conditions["Value"])
        newer = next((selected.pop(k) for k in list(selected)
                      if str(k).lower() in ("fromdate", "lastupdate")), None)
        restrict = monitoringRestriction(self.getRemoteCredentials())
        counters: dict[str, dict[Any, int]] = {}
        for attribute in attrList:
            result = self.db.getCounters("Jobs", [attribute], selected, newer=newer,
                                         restrict=restrict)
            if not result["OK"]:
                return result
            counters[attribute] = {next(iter(values.values())): count
                                   for values, count in result["Value"]}
        return S_OK(counters)
