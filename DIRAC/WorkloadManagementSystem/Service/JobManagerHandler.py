"""``WorkloadManagement/JobManager``: submit jobs, and kill, delete, reschedule, reset them.

The logic lives in :class:`~DIRAC.WorkloadManagementSystem.DB.JobDB.JobDB`; this
handler checks arguments and who may act on which job (see JobPolicy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from diracmq.broker.derrno import EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.Core.Utilities.Environment import envNumber
from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import entityForJob
from DIRAC.WorkloadManagementSystem.Service.JobPolicy import (
    SandboxRecordsMixin,
    canManage,
    isAdministrator,
    splitByRights,
)
from DIRAC.WorkloadManagementSystem.Utilities.JobIDs import parseJobIDs
from DIRAC.WorkloadManagementSystem.Utilities.OptimizerQueue import getAnnouncer

__all__ = ["JobManagerHandler"]

#: What job ID arguments may be: an int, a numeric string or a list of those.
_JOB_IDS = [int, str, list, tuple]


class JobManagerHandler(SandboxRecordsMixin, RequestHandler):
    """Job submission and job control."""

    #: Most jobs one parametric JDL may describe (DIRAC's MaxParametricJobs).
    maxParametricJobs: ClassVar[int] = envNumber("DIRAC_WMS_MAX_PARAMETRIC_JOBS", 20, minimum=1)

    # ------------------------------------------------------------- submit
    types_submitJob: ClassVar[list] = [str]
    auth_submitJob: ClassVar[list] = ["authenticated"]

    def export_submitJob(self, jobDesc: str) -> DReturnType:
        """Submit the job(s) a JDL describes, owned by the caller.

        ``S_OK(jobID)`` (``S_OK([jobIDs])`` for a parametric JDL), with the same
        value under the extra key ``JobID``; a malformed JDL is ``S_ERROR(EWMSJDL)``.
        """
        credentials = self.getRemoteCredentials()
        result = self.db.submitJob(
            jobDesc, owner=credentials.get("username", ""),
            ownerGroup=credentials.get("group") or "", vo=credentials.get("VO") or "",
            maxParametricJobs=self.maxParametricJobs)
        if result["OK"]:
            result["JobID"] = result["Value"]
            value = result["Value"]
            getAnnouncer().announce(value if isinstance(value, list) else [value])
        return result

    # ------------------------------------------------------- job control
    def _control(self, jobInput: Any, verb: str,
                 action: Callable[[int], DReturnType]) -> DReturnType:
        """Run ``action`` on every job of ``jobInput`` the caller may manage.

        ``S_OK([jobIDs])`` when all succeeded; else an S_ERROR listing the jobs and
        why, with ``InvalidJobIDs``, ``NonauthorizedJobIDs``, ``FailedJobIDs`` keys
        (each present only when not empty, as in DIRAC).
        """
        valid, invalid = parseJobIDs(jobInput)
        if not valid and not invalid:
            return S_ERROR(EVALUE, f"Invalid job specification: {jobInput!r}")
        rights = splitByRights(self.db, self.getRemoteCredentials(), valid, canManage)
        if not rights["OK"]:
            return rights
        authorized, unknown, refused = rights["Value"]
        done: list[int] = []
        failed: dict[int, str] = {}
        for job_id in authorized:
            result = action(job_id)
            if result["OK"]:
                done.append(job_id)
            else:
                failed[job_id] = result["Message"]
        invalid_ids = [*invalid, *unknown]
        if not (invalid_ids or refused or failed):
            return S_OK(done)
        reasons = []
        if invalid_ids:
            reasons.append(f"invalid or unknown job IDs {invalid_ids}")
        if refused:
            reasons.append(f"not authorized for jobs {refused} (not the owner)")
        if failed:
            reasons.append("; ".join(f"job {i}: {m}" for i, m in failed.items()))
        result = S_ERROR(f"Some jobs failed to be {verb}: " + "; ".join(reasons))
        if invalid_ids:
            result["InvalidJobIDs"] = invalid_ids
        if refused:
            result["NonauthorizedJobIDs"] = refused
        if failed:
            result["FailedJobIDs"] = list(failed)
        if done:
            result["SuccessfulJobIDs"] = done
        return result

    def _force(self, force: Any) -> bool:
        return bool(force) and isAdministrator(self.getRemoteCredentials())

    types_killJob: ClassVar[list] = [_JOB_IDS]
    auth_killJob: ClassVar[list] = ["authenticated"]

    def export_killJob(self, jobIDs: Any, force: bool = False) -> DReturnType:
        """Kill jobs (status Killed).  ``force`` (JobAdministrator only) skips the state machine."""
        force = self._force(force)
        return self._control(jobIDs, "killed",
                             lambda job_id: self.db.killJob(job_id, force=force))

    types_deleteJob: ClassVar[list] = [_JOB_IDS]
    auth_deleteJob: ClassVar[list] = ["authenticated"]

    def export_deleteJob(self, jobIDs: Any, force: bool = False) -> DReturnType:
        """Delete jobs (status Deleted; a running job is Killed first)."""
        force = self._force(force)

        def delete(job_id: int) -> DReturnType:
            result = self.db.deleteJob(job_id, force=force)
            if result["OK"]:  # a deleted job's sandboxes go with it
                removed = self.sb.unassignEntities([entityForJob(job_id)])
                if not removed["OK"]:
                    return removed
            return result

        return self._control(jobIDs, "deleted", delete)

    types_rescheduleJob: ClassVar[list] = [_JOB_IDS]
    auth_rescheduleJob: ClassVar[list] = ["authenticated"]

    def export_rescheduleJob(self, jobIDs: Any) -> DReturnType:
        """Send jobs back to Received (through Rescheduled); Failed beyond the limit.
        The optimizers are told (the job goes through the chain again)."""
        result = self._control(jobIDs, "rescheduled", lambda job_id: self.db.rescheduleJob(job_id))
        self._announce(result)
        return result

    @staticmethod
    def _announce(result: DReturnType) -> None:
        done = result["Value"] if result["OK"] else result.get("SuccessfulJobIDs") or []
        getAnnouncer().announce(done)

    types_resetJob: ClassVar[list] = [_JOB_IDS]
    auth_resetJob: ClassVar[list] = ["authenticated"]

    def export_resetJob(self, jobIDs: Any) -> DReturnType:
        """Reschedule jobs with their reschedule counter set back to zero."""
        result = self._control(jobIDs, "reset",
                               lambda job_id: self.db.rescheduleJob(job_id, reset=True))
        self._announce(result)
        return result
