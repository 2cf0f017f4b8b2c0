"""DIRAC's ``Dirac``: submit jobs, follow them, get their sandboxes back.

Every method returns ``S_OK``/``S_ERROR`` as DIRAC's does.  Data-management methods
(``addFile``, ``getFile``, ``replicateFile``, ...) are not part of this API here: they
return a clear ``S_ERROR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diracmq.broker.derrno import EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.Interfaces.API.Job import Job
from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient
from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd, JDLError, parseJDL
from DIRAC.WorkloadManagementSystem.Utilities.JobIDs import parseJobIDs

__all__ = ["Dirac"]

_NOT_HERE = ("addFile", "getFile", "replicateFile", "removeFile", "getReplicas",
             "getLfnMetadata", "getJobOutputData", "getJobOutputLFNs", "removeReplica",
             "getAccessURL", "getFileMetadata", "listCatalogDirectory")


def _jdlToDict(ad: ClassAd) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in ad.items():
        out[name] = _jdlToDict(value) if isinstance(value, ClassAd) else \
            [str(v) for v in value] if isinstance(value, list) else \
            value if isinstance(value, (str, int, float, bool)) else str(value)
    return out


class Dirac:
    """The user API: ``Dirac().submitJob(job)``, ``getJobStatus``, ``getOutputSandbox``..."""

    def __init__(self, withRepo: bool = False, repoLocation: str = "", **kwargs: Any) -> None:
        del withRepo, repoLocation  # DIRAC's local job repository: not kept
        self._options = kwargs
        self.wms = WMSClient(**kwargs)
        self.monitoring = JobMonitoringClient(**kwargs)
        self.sandboxes = SandboxStoreClient(**kwargs)

    def __getattr__(self, name: str) -> Any:
        if name in _NOT_HERE:
            def unsupported(*args: Any, **kwargs: Any) -> DReturnType:
                return S_ERROR(f"Dirac.{name}: data management is not part of this API "
                               f"(see the DataManagement System's clients)")
            return unsupported
        raise AttributeError(name)

    @staticmethod
    def _ids(jobID: Any) -> DReturnType:
        valid, invalid = parseJobIDs(jobID)
        if invalid or not valid:
            return S_ERROR(EVALUE, f"invalid job ID(s): {invalid or jobID!r}")
        return S_OK(valid)

    # --------------------------------------------------------------- submit
    def submitJob(self, job: Any, mode: str = "wms") -> DReturnType:
        """Submit a ``Job``, a JDL text or a JDL file: ``S_OK(jobID)`` (a list for a
        parametric job).  Local input sandbox files are uploaded first."""
        if mode.lower() != "wms":
            return S_ERROR(EVALUE, f"mode {mode!r}: only 'wms' is supported")
        base = None
        if isinstance(job, Job):
            if job.errorDict:
                return S_ERROR(EVALUE, "the job has errors: " + "; ".join(
                    f"{k}: {', '.join(v)}" for k, v in job.errorDict.items()))
            if not job.steps:
                return S_ERROR(EVALUE, "the job has no executable (Job.setExecutable)")
            jdl = job._toJDL()
        elif isinstance(job, str) and not job.lstrip().startswith("[") and os.path.isfile(job):
            jdl = Path(job).read_text()
            base = Path(job).resolve().parent
        elif isinstance(job, str):
            jdl = job
        else:
            return S_ERROR(EVALUE, f"cannot submit a {type(job).__name__}: expected a Job, a "
                                   f"JDL or a JDL file")
        return self.wms.submitJob(jdl, baseDir=base)

    # ---------------------------------------------------------------- status
    def getJobStatus(self, jobID: Any) -> DReturnType:
        """``S_OK({jobID: {"Status", "MinorStatus", "ApplicationStatus", "Site", ...}})``."""
        ids = self._ids(jobID)
        if not ids["OK"]:
            return ids
        result = self.monitoring.getJobsSummary(ids["Value"])
        if not result["OK"]:
            return result
        out = {}
        for key, summary in (result["Value"] or {}).items():
            out[int(key)] = {k: summary.get(k) for k in (
                "Status", "MinorStatus", "ApplicationStatus", "Site", "JobName")}
        return S_OK(out)

    def getJobJDL(self, jobID: int, original: bool = False, printOutput: bool = False
                  ) -> DReturnType:
        """The job's description as a dict (``original``: as submitted, without what
        the optimizers added)."""
        del printOutput
        result = self.monitoring.getJobJDL(int(jobID), original)
        if not result["OK"]:
            return result
        try:
            ad = parseJDL(result["Value"])
        except JDLError as exc:
            return S_ERROR(EVALUE, f"stored JDL does not parse: {exc}")
        if original:
            ad.deleteAttribute("JobRequirements")
        return S_OK(_jdlToDict(ad))

    def getJobLoggingInfo(self, jobID: int, printOutput: bool = False) -> DReturnType:
        """``S_OK([(Status, MinorStatus, ApplicationStatus, DateTime, Source), ...])``."""
        del printOutput
        return self.monitoring.getJobLoggingInfo(int(jobID))

    def peekJob(self, jobID: int, printOutput: bool = False) -> DReturnType:
        """The end of the job's stdout so far (sent by the job agent with each heartbeat)."""
        result = self.monitoring.getJobParameter(int(jobID), "StandardOutput")
        if not result["OK"]:
            return result
        text = (result["Value"] or {}).get("StandardOutput") or ""
        if printOutput:
            print(text)
        return S_OK(text)

    # -------------------------------------------------------------- control
    def killJob(self, jobID: Any) -> DReturnType:
        """Kill jobs: a running one is stopped by its job agent at the next heartbeat."""
        return self.wms.killJob(jobID)

    def deleteJob(self, jobID: Any) -> DReturnType:
        """Delete jobs and their sandboxes."""
        return self.wms.deleteJob(jobID)

    def rescheduleJob(self, jobID: Any) -> DReturnType:
        """Run jobs again from the start."""
        return self.wms.rescheduleJob(jobID)

    def resetJob(self, jobID: Any) -> DReturnType:
        """Reschedule with the counter reset."""
        return self.wms.resetJob(jobID)

    # ------------------------------------------------------------ sandboxes
    def _sandbox(self, jobID: Any, kind: str, outputDir: str | None, noJobDir: bool,
                 prefix: str = "") -> DReturnType:
        """Download one kind of sandbox of each job into ``outputDir/<prefix><jobID>/``."""
        ids = self._ids(jobID)
        if not ids["OK"]:
            return ids
        for job_id in ids["Value"]:
            where = Path(outputDir or os.getcwd())
            if not noJobDir:
                where = where / f"{prefix}{job_id}"
            result = self.sandboxes.downloadSandboxForJob(job_id, kind, str(where))
            if not result["OK"]:
                return result
        return S_OK(ids["Value"] if isinstance(jobID, list) else ids["Value"][0])

    def getOutputSandbox(self, jobID: Any, outputDir: str | None = None, oversized: bool = True,
                         noJobDir: bool = False, unpack: bool = True) -> DReturnType:
        """Download the output sandbox into ``outputDir/<jobID>/`` (default: the current
        directory; ``noJobDir``: straight into ``outputDir``)."""
        del oversized, unpack
        return self._sandbox(jobID, "Output", outputDir, noJobDir)

    def getInputSandbox(self, jobID: Any, outputDir: str | None = None, noJobDir: bool = False
                        ) -> DReturnType:
        """Download the input sandbox into ``outputDir/InputSandbox<jobID>/``."""
        return self._sandbox(jobID, "Input", outputDir, noJobDir, prefix="InputSandbox")
