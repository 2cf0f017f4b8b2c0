"""``WorkloadManagement/JobStateUpdate``: status, parameters and heartbeats of running jobs.

Reported by whoever runs the job (a pilot) or by its owner: the caller must own
the job or have ``GenericPilot``/``Pilot``/``JobAdministrator`` (see JobPolicy).
Every status change is checked against the state machine (refused with
``S_ERROR(EWMSSTATUS)`` unless ``force``) and logged.
"""

from __future__ import annotations

from typing import Any, ClassVar

from diracmq.broker.derrno import ENOAUTH, EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.WorkloadManagementSystem.Client import JobStatus
from DIRAC.WorkloadManagementSystem.Service.JobPolicy import (
    JobDBHandlerMixin,
    canUpdateState,
    singleJobID,
    splitByRights,
)

__all__ = ["JobStateUpdateHandler"]

_JOB_ID = [int, str]
_AUTH = ["authenticated"]


class JobStateUpdateHandler(JobDBHandlerMixin, RequestHandler):
    """Updates of a job's state while it runs."""

    def _authorized(self, jobID: Any) -> DReturnType:
        """``S_OK(int jobID)`` if the job exists and the caller may update it."""
        job_id = singleJobID(jobID)
        if not job_id["OK"]:
            return job_id
        rights = splitByRights(self.db, self.getRemoteCredentials(), [job_id["Value"]],
                               canUpdateState)
        if not rights["OK"]:
            return rights
        _authorized, unknown, refused = rights["Value"]
        if unknown:
            return S_ERROR(EVALUE, f"Job {job_id['Value']} not found")
        if refused:
            return S_ERROR(ENOAUTH, f"not the owner of job {job_id['Value']}")
        return job_id

    types_setJobStatus: ClassVar[list] = [_JOB_ID, str, str, str]
    auth_setJobStatus: ClassVar[list] = _AUTH

    def export_setJobStatus(self, jobID: Any, status: str, minorStatus: str, source: str,
                            datetime: Any = None, force: bool = False) -> DReturnType:
        """Set a job's status and minor status ("" leaves either unchanged).

        ``datetime`` (a datetime or ISO text, UTC) dates the change; default now.
        """
        job_id = self._authorized(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.setJobStatus(job_id["Value"], status, minorStatus, source, datetime,
                                    bool(force))

    types_setJobStatusBulk: ClassVar[list] = [_JOB_ID, dict]
    auth_setJobStatusBulk: ClassVar[list] = _AUTH

    def export_setJobStatusBulk(self, jobID: Any, statusDict: dict, force: bool = False
                                ) -> DReturnType:
        """Apply ``{date: {Status, MinorStatus, ApplicationStatus, Source}}`` in date order,
        all or nothing."""
        job_id = self._authorized(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.setJobStatusBulk(job_id["Value"], statusDict, bool(force))

    types_setJobApplicationStatus: ClassVar[list] = [_JOB_ID, str, str]
    auth_setJobApplicationStatus: ClassVar[list] = _AUTH

    def export_setJobApplicationStatus(self, jobID: Any, appStatus: str, source: str
                                       ) -> DReturnType:
        """Set a job's application status (logged)."""
        job_id = self._authorized(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.setJobApplicationStatus(job_id["Value"], appStatus, source)

    types_setJobParameter: ClassVar[list] = [_JOB_ID, str, None]
    auth_setJobParameter: ClassVar[list] = _AUTH

    def export_setJobParameter(self, jobID: Any, name: str, value: Any) -> DReturnType:
        """Set one job parameter (stored as text)."""
        job_id = self._authorized(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.setJobParameter(job_id["Value"], name, value)

    types_setJobParameters: ClassVar[list] = [_JOB_ID, [list, tuple, dict]]
    auth_setJobParameters: ClassVar[list] = _AUTH

    def export_setJobParameters(self, jobID: Any, parameters: Any) -> DReturnType:
        """Set job parameters: ``[[name, value], ...]`` or ``{name: value}``."""
        job_id = self._authorized(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.setJobParameters(job_id["Value"], parameters)

    types_sendHeartBeat: ClassVar[list] = [_JOB_ID, dict, dict]
    auth_sendHeartBeat: ClassVar[list] = _AUTH

    def export_sendHeartBeat(self, jobID: Any, dynamicData: dict, staticData: dict
                             ) -> DReturnType:
        """Record a heartbeat; ``S_OK({command: argument})`` (``{"Kill": ...}`` when the
        job was killed).  A Matched or Stalled job becomes Running."""
        job_id = self._authorized(jobID)
        if not job_id["OK"]:
            return job_id
        return self.db.setHeartBeat(job_id["Value"], dynamicData, staticData)

    types_getStateMachine: ClassVar[list] = []
    auth_getStateMachine: ClassVar[list] = ["all"]

    def export_getStateMachine(self) -> DReturnType:
        """The allowed transitions: ``{state: [next states]}``."""
        return S_OK({state: sorted(nxt, key=JobStatus.JOB_STATES.index)
                     for state, nxt in JobStatus.JOB_TRANSITIONS.items()})
