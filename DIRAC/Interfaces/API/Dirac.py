"""DIRAC's ``Dirac``: submit jobs, follow them, get their sandboxes back.

Every method returns ``S_OK``/``S_ERROR`` as DIRAC's does.  The data methods
(``addFile``, ``getFile``, ``replicateFile``, ``removeFile``, ``removeReplica``,
``getReplicas``, ``getLfnMetadata``, ``listCatalogDirectory``, ``getJobOutputLFNs``,
``getJobOutputData``) go to the DataManagement System (DataManager, FileCatalog);
``getAccessURL`` and ``getFileMetadata`` (storage URLs and metadata) return a clear
``S_ERROR``.
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

_NOT_HERE = ("getAccessURL", "getFileMetadata")


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
        self._dm: Any = None

    def __getattr__(self, name: str) -> Any:
        if name in _NOT_HERE:
            def unsupported(*args: Any, **kwargs: Any) -> DReturnType:
                return S_ERROR(f"Dirac.{name}: not part of this API (see the DataManagement "
                               f"System's clients: StorageElement, FileCatalog)")
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

    # ----------------------------------------------------------------- data
    @property
    def dataManager(self) -> Any:
        """The DataManager the data methods use (made on first use)."""
        if self._dm is None:
            from DIRAC.DataManagementSystem.Client.DataManager import DataManager

            self._dm = DataManager(**self._options)
        return self._dm

    def addFile(self, lfn: str, fullPath: str, diracSE: str, fileGuid: str | None = None,
                printOutput: bool = False) -> DReturnType:
        """Upload a local file to ``diracSE`` and register it as ``lfn``."""
        del printOutput
        return self.dataManager.putAndRegister(lfn, fullPath, diracSE, guid=fileGuid)

    def getFile(self, lfn: Any, destDir: str = "", printOutput: bool = False) -> DReturnType:
        """Download files into ``destDir`` (default: the current directory)."""
        del printOutput
        return self.dataManager.getFile(lfn, destinationDir=destDir)

    def replicateFile(self, lfn: Any, destinationSE: str, sourceSE: str = "",
                      localCache: str = "", printOutput: bool = False) -> DReturnType:
        """Copy files to ``destinationSE`` and register the new replicas."""
        del printOutput
        return self.dataManager.replicateAndRegister(lfn, destinationSE, sourceSE=sourceSE,
                                                     localCache=localCache)

    def removeFile(self, lfn: Any, printOutput: bool = False) -> DReturnType:
        """Remove files from every SE and from the catalogue."""
        del printOutput
        return self.dataManager.removeFile(lfn)

    def removeReplica(self, lfn: Any, storageElement: str, printOutput: bool = False
                      ) -> DReturnType:
        """Remove the replicas at ``storageElement`` (never a file's last one)."""
        del printOutput
        return self.dataManager.removeReplica(storageElement, lfn)

    def getReplicas(self, lfns: Any, active: bool = True, preferDisk: bool = False,
                    diskOnly: bool = False, printOutput: bool = False) -> DReturnType:
        """``{lfn: {SE: PFN}}`` (only the active replicas with ``active``)."""
        del printOutput
        return self.dataManager.getReplicas(lfns, active=active, preferDisk=preferDisk,
                                            diskOnly=diskOnly)

    def getLfnMetadata(self, lfn: Any, printOutput: bool = False) -> DReturnType:
        """The catalogue's metadata of files (Size, Checksum, GUID, Owner, ...)."""
        del printOutput
        return self.dataManager.fileCatalog.getFileMetadata(lfn)

    def listCatalogDirectory(self, directoryLFN: Any, printOutput: bool = False
                             ) -> DReturnType:
        """The catalogue's listing of directories (``{path: {Files, SubDirs, Links}}``)."""
        del printOutput
        return self.dataManager.fileCatalog.listDirectory(directoryLFN, True)

    def getJobOutputLFNs(self, jobID: int) -> DReturnType:
        """``S_OK([lfn, ...])``: the output data the job's agent uploaded
        (its ``UploadedOutputData`` parameter)."""
        ids = self._ids(jobID)
        if not ids["OK"]:
            return ids
        job_id = ids["Value"][0]
        result = self.monitoring.getJobParameter(job_id, "UploadedOutputData")
        if not result["OK"]:
            return result
        text = (result["Value"] or {}).get("UploadedOutputData")
        if not text:
            return S_ERROR(f"Parameter UploadedOutputData not found for job {job_id}")
        return S_OK([lfn.strip() for lfn in str(text).split(",") if lfn.strip()])

    def getJobOutputData(self, jobID: int, outputFiles: Any = "", destinationDir: str = ""
                         ) -> DReturnType:
        """Download the job's output data (all, or those named in ``outputFiles``) into
        ``destinationDir``: ``S_OK([local path, ...])``."""
        lfns = self.getJobOutputLFNs(jobID)
        if not lfns["OK"]:
            return lfns
        wanted = [outputFiles] if isinstance(outputFiles, str) and outputFiles else \
            list(outputFiles or [])
        chosen = [lfn for lfn in lfns["Value"]
                  if not wanted or lfn in wanted or os.path.basename(lfn) in wanted]
        if not chosen:
            return S_ERROR(f"none of {wanted} is an output data file of job {jobID}")
        got = self.dataManager.getFile(chosen, destinationDir=destinationDir)
        if not got["OK"]:
            return got
        if got["Value"]["Failed"]:
            return S_ERROR(f"cannot download the output data: {got['Value']['Failed']}")
        return S_OK([got["Value"]["Successful"][lfn] for lfn in chosen])
