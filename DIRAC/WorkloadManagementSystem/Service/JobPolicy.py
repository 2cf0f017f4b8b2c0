"""Who may do what to which job, from the caller's credentials.

Credentials are the dict a handler gets from ``getRemoteCredentials()``:
``username``, ``group``, ``properties`` (and ``DN``).  Today ``group`` is ""
and ``properties`` is empty for every broker user; the Registry (issue 3,
Identity) fills them in, and these rules then apply unchanged.

* The owner of a job manages it (kill, delete, reschedule, reset, state updates).
* ``JobAdministrator``: manages every job, may force transitions, sees every job
  in the web summary.
* ``JobSharing``: manages the jobs of its own group (a non-empty group).
* ``JobMonitor``: sees every job in the web summary (reading is otherwise open to
  any authenticated user, as in DIRAC: ``getJobs`` lists everybody's jobs).
* ``GenericPilot`` / ``Pilot``: report state updates for any job (they run it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from diracmq.broker.derrno import EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, getJobDB
from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from DIRAC.WorkloadManagementSystem.Utilities.JobIDs import parseJobIDs

__all__ = [
    "GENERIC_PILOT",
    "JOB_ADMINISTRATOR",
    "JOB_MONITOR",
    "JOB_SHARING",
    "PILOT",
    "JobDBHandlerMixin",
    "canManage",
    "canUpdateState",
    "isAdministrator",
    "monitoringRestriction",
    "singleJobID",
    "splitByRights",
]

JOB_ADMINISTRATOR = "JobAdministrator"
JOB_MONITOR = "JobMonitor"
JOB_SHARING = "JobSharing"
GENERIC_PILOT = "GenericPilot"
PILOT = "Pilot"


def _properties(credentials: dict[str, Any]) -> set[str]:
    return set(credentials.get("properties") or ())


def isAdministrator(credentials: dict[str, Any]) -> bool:
    """Whether the caller manages every job."""
    return JOB_ADMINISTRATOR in _properties(credentials)


def canManage(credentials: dict[str, Any], owner: str, ownerGroup: str) -> bool:
    """Whether the caller may kill/delete/reschedule/reset a job of ``owner``/``ownerGroup``."""
    if isAdministrator(credentials):
        return True
    username = credentials.get("username")
    if username and username != "anonymous" and username == owner:
        return True
    group = credentials.get("group")
    return bool(group) and group == ownerGroup and JOB_SHARING in _properties(credentials)


def canUpdateState(credentials: dict[str, Any], owner: str, ownerGroup: str) -> bool:
    """Whether the caller may report status, parameters and heartbeats of a job."""
    if _properties(credentials) & {GENERIC_PILOT, PILOT}:
        return True
    return canManage(credentials, owner, ownerGroup)


def monitoringRestriction(credentials: dict[str, Any]) -> dict[str, Any] | None:
    """Conditions limiting the web summary to the caller's jobs (None: sees all)."""
    properties = _properties(credentials)
    if properties & {JOB_ADMINISTRATOR, JOB_MONITOR}:
        return None
    if JOB_SHARING in properties and credentials.get("group"):
        return {"OwnerGroup": credentials["group"]}
    return {"Owner": credentials.get("username") or "anonymous"}


def singleJobID(value: Any) -> DReturnType:
    """``S_OK(int)`` from an int or a numeric string, else ``S_ERROR(EVALUE)``."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        valid, invalid = parseJobIDs(value)
        if len(valid) == 1 and not invalid:
            return S_OK(valid[0])
    return S_ERROR(EVALUE, f"Invalid job ID {value!r}: expected a positive integer")


def splitByRights(jobDB: JobDB, credentials: dict[str, Any], jobIDs: Sequence[int],
                  allowed: Callable[[dict[str, Any], str, str], bool] = canManage
                  ) -> DReturnType:
    """``S_OK((authorized, unknown, nonauthorized))`` lists of job IDs."""
    result = jobDB.getJobsOwnership(jobIDs)
    if not result["OK"]:
        return result
    ownership = result["Value"]
    authorized, unknown, refused = [], [], []
    for job_id in jobIDs:
        if job_id not in ownership:
            unknown.append(job_id)
        elif allowed(credentials, *ownership[job_id]):
            authorized.append(job_id)
        else:
            refused.append(job_id)
    return S_OK((authorized, unknown, refused))


class JobDBHandlerMixin:
    """What the three WMS handlers share: the process's JobDB, opened at start."""

    jobDB: ClassVar[JobDB | None] = None

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Open the JobDB (creating its schema on first start); S_ERROR stops the worker."""
        del serviceInfoDict
        db = getJobDB()
        result = db.initialize()
        if not result["OK"]:
            return S_ERROR(f"cannot open the JobDB at {db!r}: {result['Message']}")
        cls.jobDB = db
        return S_OK()

    @property
    def db(self) -> JobDB:
        """The JobDB (opened on first use if ``initializeHandler`` did not run)."""
        if type(self).jobDB is None:
            result = type(self).initializeHandler({})
            if not result["OK"]:
                raise RuntimeError(result["Message"])
        return type(self).jobDB  # type: ignore[return-value]


class SandboxRecordsMixin(JobDBHandlerMixin):
    """A WMS handler that also reads or writes sandbox records (in the JobDB's database)."""

    sandboxDB: ClassVar[SandboxMetadataDB | None] = None

    @classmethod
    def openSandboxRecords(cls) -> DReturnType:
        """Open the sandbox records on the JobDB (``initializeHandler`` opened that)."""
        sb = SandboxMetadataDB(cls.jobDB)  # type: ignore[arg-type]
        result = sb.initialize()
        if not result["OK"]:
            return S_ERROR(f"cannot open the sandbox store: {result['Message']}")
        cls.sandboxDB = sb
        return S_OK()

    @property
    def sb(self) -> SandboxMetadataDB:
        """The sandbox records (opened on first use if the handler did not open them)."""
        cls = type(self)
        if cls.sandboxDB is None:
            self.db  # noqa: B018  # the JobDB first, opened on first use too
            result = cls.openSandboxRecords()
            if not result["OK"]:
                raise RuntimeError(result["Message"])
        return cls.sandboxDB  # type: ignore[return-value]
