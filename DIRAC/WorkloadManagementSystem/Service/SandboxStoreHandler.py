"""``WorkloadManagement/SandboxStore``: sandboxes in and out, in chunks.

A transfer is many calls of at most 4 MiB each (never one message per sandbox), so a
sandbox of any size (up to ``DIRAC_SANDBOX_MAX_SIZE``) moves within bounded memory on
both sides:

* upload: ``initiateUpload(sha256, size)`` (``Exists`` when you already stored this
  content: nothing to send), ``uploadChunk(uploadID, offset, data)`` as many times
  as needed, ``finishUpload(uploadID)`` -> the sandbox name ``SB:SandboxSE|...``;
* download: ``getSandboxInfo(name)`` (size, sha256), then ``downloadChunk(name,
  offset, length)``.

Who may read a sandbox: its owner, the owners (or managers, see JobPolicy) of the jobs
it is assigned to, job agents (``GenericPilot``/``Pilot``) and ``JobAdministrator``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from diracmq.broker.derrno import ENOAUTH, EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from diracmq.workers.handler import RequestHandler

from DIRAC.WorkloadManagementSystem.Service.JobPolicy import (
    GENERIC_PILOT,
    JOB_ADMINISTRATOR,
    PILOT,
    SandboxRecordsMixin,
    canManage,
    canUpdateState,
)

__all__ = ["SandboxStoreHandler"]

_AUTH = ["authenticated"]
_READ_ALL = {GENERIC_PILOT, PILOT, JOB_ADMINISTRATOR}


def _jobID(entity: Any) -> int | None:
    if isinstance(entity, str) and entity.startswith("Job:") and entity[4:].isdigit():
        return int(entity[4:])
    return None


class SandboxStoreHandler(SandboxRecordsMixin, RequestHandler):
    """Chunked, content-addressed sandbox storage with ownership checks."""

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Open the JobDB, the sandbox tables and the storage directory."""
        result = super().initializeHandler(serviceInfoDict)
        return cls.openSandboxRecords() if result["OK"] else result

    def _me(self) -> tuple[str, str, dict[str, Any]]:
        creds = self.getRemoteCredentials()
        return creds.get("username", "anonymous"), creds.get("group") or "", creds

    # ---------------------------------------------------------------- upload
    types_initiateUpload: ClassVar[list] = [str, int]
    auth_initiateUpload: ClassVar[list] = _AUTH

    def export_initiateUpload(self, sha256: str, size: int) -> DReturnType:
        """Announce an upload: ``S_OK({"Exists": True, "Sandbox": name})`` or
        ``S_OK({"Exists": False, "UploadID", "ChunkSize"})``."""
        owner, group, _ = self._me()
        return self.sb.initiateUpload(sha256, size, owner, group)

    types_uploadChunk: ClassVar[list] = [str, int, bytes]
    auth_uploadChunk: ClassVar[list] = _AUTH

    def export_uploadChunk(self, uploadID: str, offset: int, data: bytes) -> DReturnType:
        """Write one chunk (at most 4 MiB) of your upload at ``offset``."""
        return self.sb.uploadChunk(uploadID, offset, data, self._me()[0])

    types_finishUpload: ClassVar[list] = [str]
    auth_finishUpload: ClassVar[list] = _AUTH

    def export_finishUpload(self, uploadID: str) -> DReturnType:
        """Check size and sha256 and store: ``S_OK("SB:SandboxSE|...")``."""
        return self.sb.finishUpload(uploadID, self._me()[0])

    # -------------------------------------------------------------- download
    def _readable(self, name: Any) -> DReturnType:
        """``S_OK(sandbox record)`` if the caller may read it."""
        found = self.sb.getSandbox(name)
        if not found["OK"]:
            return found
        sandbox = found["Value"]
        user, _, creds = self._me()
        if sandbox["Owner"] == user and user != "anonymous":
            return found
        if _READ_ALL & set(creds.get("properties") or ()):
            return found
        job_ids = [j for j in (_jobID(e) for e, _ in sandbox["Entities"]) if j is not None]
        if job_ids:
            owners = self.db.getJobsOwnership(job_ids)
            if owners["OK"] and any(canManage(creds, *o) for o in owners["Value"].values()):
                return found
        return S_ERROR(ENOAUTH, f"you may not read sandbox {name}")

    types_getSandboxInfo: ClassVar[list] = [str]
    auth_getSandboxInfo: ClassVar[list] = _AUTH

    def export_getSandboxInfo(self, name: str) -> DReturnType:
        """``S_OK({"Name", "Bytes", "SHA256", "Owner"})`` of a sandbox you may read."""
        found = self._readable(name)
        if not found["OK"]:
            return found
        sandbox = found["Value"]
        return S_OK({k: sandbox[k] for k in ("Name", "Bytes", "SHA256", "Owner")})

    types_downloadChunk: ClassVar[list] = [str, int, int]
    auth_downloadChunk: ClassVar[list] = _AUTH

    def export_downloadChunk(self, name: str, offset: int, length: int) -> DReturnType:
        """``S_OK(bytes)``: up to ``length`` (at most 4 MiB) bytes from ``offset``."""
        found = self._readable(name)
        if not found["OK"]:
            return found
        return self.sb.readChunk(found["Value"]["SHA256"], offset, length)

    # -------------------------------------------------------------- entities
    def _mayUse(self, entity: Any, check: Any) -> DReturnType:
        job_id = _jobID(entity)
        if job_id is None:
            return S_ERROR(EVALUE, f"unknown entity {entity!r}: expected 'Job:<id>'")
        owners = self.db.getJobsOwnership([job_id])
        if not owners["OK"]:
            return owners
        if job_id not in owners["Value"]:
            return S_ERROR(EVALUE, f"Job {job_id} not found")
        if not check(self._me()[2], *owners["Value"][job_id]):
            return S_ERROR(ENOAUTH, f"not allowed for job {job_id}")
        return S_OK(job_id)

    types_assignSandboxesToEntities: ClassVar[list] = [dict]
    auth_assignSandboxesToEntities: ClassVar[list] = _AUTH

    def export_assignSandboxesToEntities(self, enDict: dict, ownerName: str = "",
                                         ownerGroup: str = "") -> DReturnType:
        """``{"Job:<id>": [(name, "Input"|"Output")]}``: your sandboxes, for jobs you own
        or run (a job agent assigns the output sandbox).  ``S_OK(count)``."""
        del ownerName, ownerGroup  # DIRAC's delegation arguments: the caller is the owner
        credentials = self._me()[2]

        def authorize(jobID: int, job: dict[str, Any] | None) -> None:
            # checked in the assignment's transaction (no read of the rights before)
            if job is None:
                raise SErrorException(S_ERROR(EVALUE, f"Job {jobID} not found"))
            if not canUpdateState(credentials, job["Owner"], job["OwnerGroup"]):
                raise SErrorException(S_ERROR(ENOAUTH, f"not allowed for job {jobID}"))

        return self.sb.assignSandboxesToEntities(enDict, owner=self._me()[0],
                                                 authorize=authorize)

    types_getSandboxesAssignedToEntity: ClassVar[list] = [str]
    auth_getSandboxesAssignedToEntity: ClassVar[list] = _AUTH

    def export_getSandboxesAssignedToEntity(self, entity: str) -> DReturnType:
        """``S_OK({"Input": [names], "Output": [names]})`` of a job you may see."""
        allowed = self._mayUse(entity, canUpdateState)
        if not allowed["OK"]:
            return allowed
        found = self.sb.getSandboxesAssignedToEntity(entity)
        if not found["OK"]:
            return found
        out: dict[str, list[str]] = {"Input": [], "Output": []}
        for name, kind, _ in found["Value"]:
            out.setdefault(kind, []).append(name)
        return S_OK(out)

    types_unassignEntities: ClassVar[list] = [list]
    auth_unassignEntities: ClassVar[list] = _AUTH

    def export_unassignEntities(self, entities: list) -> DReturnType:
        """Forget the sandboxes of jobs you manage (unused contents are deleted)."""
        for entity in entities:
            allowed = self._mayUse(entity, canManage)
            if not allowed["OK"]:
                return allowed
        return self.sb.unassignEntities(entities)
