"""``WorkloadManagement/JobStateUpdate``: status, parameters and heartbeats of running jobs.

Reported by whoever runs the job (a pilot) or by its owner: the caller must own
the job or have ``GenericPilot``/``Pilot``/``JobAdministrator`` (see JobPolicy).
Every status change is checked against the state machine (refused with
``S_ERROR(EWMSSTATUS)`` unless ``force``) and logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from diracmq.broker.derrno import ENOAUTH, EVALUE, EWMSUKN
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from diracmq.workers.handler import RequestHandler

from DIRAC.WorkloadManagementSystem.Client import JobStatus
from DIRAC.WorkloadManagementSystem.DB.JobDB import Authorize
from DIRAC.WorkloadManagementSystem.Service.JobPolicy import (
    SandboxRecordsMixin,
    canUpdateState,
    singleJobID,
)

__all__ = ["JobStateUpdateHandler"]

_JOB_ID = [int, str]
_AUTH = ["authenticated"]


def _stateUpdater(credentials: dict[str, Any]) -> Authorize:
    """The JobDB's ``authorize`` for this caller: may it update the job's state?"""

    def authorize(job: dict[str, Any]) -> None:
        if not canUpdateState(credentials, job["Owner"], job["OwnerGroup"]):
            raise SErrorException(S_ERROR(ENOAUTH, f"not the owner of job {job['JobID']}"))

    return authorize


def _notFound(jobID: int, message: str) -> bool:
    """Whether a JobDB error ``message`` says that job ``jobID`` does not exist."""
    return message.endswith(f"Job {jobID} not found)")


class JobStateUpdateHandler(SandboxRecordsMixin, RequestHandler):
    """Updates of a job's state while it runs."""

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Open the JobDB and the sandbox records (``reportJobs`` assigns sandboxes)."""
        result = super().initializeHandler(serviceInfoDict)
        return cls.openSandboxRecords() if result["OK"] else result

    def _update(self, jobID: Any, update: Callable[[int, Authorize], DReturnType]
                ) -> DReturnType:
        """Run ``update(jobID, authorize)``, a JobDB method checking the caller's rights on
        the job in its own transaction (one transaction per update, not a read of the
        rights first); an unknown job is ``S_ERROR(EVALUE, "Job N not found")``."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        number = job_id["Value"]
        result = update(number, _stateUpdater(self.getRemoteCredentials()))
        if not result["OK"] and result.get("Errno") == EWMSUKN \
                and _notFound(number, result["Message"]):
            return S_ERROR(EVALUE, f"Job {number} not found")
        return result

    types_setJobStatus: ClassVar[list] = [_JOB_ID, str, str, str]
    auth_setJobStatus: ClassVar[list] = _AUTH

    def export_setJobStatus(self, jobID: Any, status: str, minorStatus: str, source: str,
                            datetime: Any = None, force: bool = False) -> DReturnType:
        """Set a job's status and minor status ("" leaves either unchanged).

        ``datetime`` (a datetime or ISO text, UTC) dates the change; default now.
        """
        return self._update(jobID, lambda job_id, authorize: self.db.setJobStatus(
            job_id, status, minorStatus, source, datetime, bool(force), authorize=authorize))

    types_setJobStatusBulk: ClassVar[list] = [_JOB_ID, dict]
    auth_setJobStatusBulk: ClassVar[list] = _AUTH

    def export_setJobStatusBulk(self, jobID: Any, statusDict: dict, force: bool = False
                                ) -> DReturnType:
        """Apply ``{date: {Status, MinorStatus, ApplicationStatus, Source}}`` in date order,
        all or nothing."""
        return self._update(jobID, lambda job_id, authorize: self.db.setJobStatusBulk(
            job_id, statusDict, bool(force), authorize=authorize))

    types_setJobApplicationStatus: ClassVar[list] = [_JOB_ID, str, str]
    auth_setJobApplicationStatus: ClassVar[list] = _AUTH

    def export_setJobApplicationStatus(self, jobID: Any, appStatus: str, source: str
                                       ) -> DReturnType:
        """Set a job's application status (logged)."""
        return self._update(jobID, lambda job_id, authorize: self.db.setJobStatus(
            job_id, applicationStatus=appStatus, source=source, authorize=authorize))

    types_setJobParameter: ClassVar[list] = [_JOB_ID, str, None]
    auth_setJobParameter: ClassVar[list] = _AUTH

    def export_setJobParameter(self, jobID: Any, name: str, value: Any) -> DReturnType:
        """Set one job parameter (stored as text)."""
        return self._update(jobID, lambda job_id, authorize: self.db.setJobParameter(
            job_id, name, value, authorize=authorize))

    types_setJobParameters: ClassVar[list] = [_JOB_ID, [list, tuple, dict]]
    auth_setJobParameters: ClassVar[list] = _AUTH

    def export_setJobParameters(self, jobID: Any, parameters: Any) -> DReturnType:
        """Set job parameters: ``[[name, value], ...]`` or ``{name: value}``."""
        return self._update(jobID, lambda job_id, authorize: self.db.setJobParameters(
            job_id, parameters, authorize=authorize))

    types_reportJobs: ClassVar[list] = [dict]
    auth_reportJobs: ClassVar[list] = _AUTH

    def export_reportJobs(self, reports: dict) -> DReturnType:
        """Report the end (or any part) of several jobs in one call and one transaction:
        what the job agent sends when jobs finish, instead of ``setJobParameters``,
        ``setJobStatusBulk`` and ``SandboxStore.assignSandboxesToEntities`` per job.

        ``reports``: ``{jobID: {"Parameters": [[name, value], ...] or {name: value},
        "Status": {date: {Status, MinorStatus, ApplicationStatus, Source}},
        "Sandboxes": [[name, "Input"|"Output"], ...]}}``, every key optional.  Per job,
        in this order and all or nothing: the parameters are set, the statuses applied
        as ``setJobStatusBulk`` does (date order, checked against the state machine) and
        the sandboxes (the caller's own) assigned.  The caller must be allowed to update
        each job's state (its owner, a pilot...).  One job's refusal does not stop the
        others: ``S_OK({"Successful": [jobIDs], "Failed": {jobID: message}})``.
        """
        credentials = self.getRemoteCredentials()
        owner = credentials.get("username", "anonymous")

        def sandboxes(conn: Any, jobID: int, report: dict[str, Any]) -> None:
            unknown = set(report) - {"Parameters", "Status", "Sandboxes"}
            if unknown:
                raise SErrorException(S_ERROR(EVALUE, f"unknown keys in the report of job "
                                                      f"{jobID}: {sorted(unknown)}"))
            if report.get("Sandboxes"):
                self.sb.assignInTransaction(conn, jobID, report["Sandboxes"], owner)

        result = self.db.reportJobs(reports, authorize=_stateUpdater(credentials),
                                    extra=sandboxes)
        if result["OK"]:
            failed = result["Value"]["Failed"]
            for job_id, message in failed.items():
                if _notFound(job_id, message):
                    failed[job_id] = f"Job {job_id} not found"
        return result

    types_sendHeartBeat: ClassVar[list] = [_JOB_ID, dict, dict]
    auth_sendHeartBeat: ClassVar[list] = _AUTH

    def export_sendHeartBeat(self, jobID: Any, dynamicData: dict, staticData: dict
                             ) -> DReturnType:
        """Record a heartbeat; ``S_OK({command: argument})`` (``{"Kill": ...}`` when the
        job was killed).  A Matched or Stalled job becomes Running."""
        return self._update(jobID, lambda job_id, authorize: self.db.setHeartBeat(
            job_id, dynamicData, staticData, authorize=authorize))

    types_getStateMachine: ClassVar[list] = []
    auth_getStateMachine: ClassVar[list] = ["all"]

    def export_getStateMachine(self) -> DReturnType:
        """The allowed transitions: ``{state: [next states]}``."""
        return S_OK({state: sorted(nxt, key=JobStatus.JOB_STATES.index)
                     for state, nxt in JobStatus.JOB_TRANSITIONS.items()})
