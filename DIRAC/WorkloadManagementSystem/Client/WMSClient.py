"""DIRAC's ``WMSClient``: job submission with the input sandbox, and job control.

``submitJob(jdl)`` uploads the local files the JDL's ``InputSandbox`` names (one
sandbox for all of them, see SandboxStoreClient), puts the sandbox name in their
place and submits the JDL to JobManager.  Entries already in the store (``SB:...``)
are kept as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diracmq.broker.derrno import EWMSJDL
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from DIRAC.WorkloadManagementSystem.Utilities.JDL import JDLError, parseJDL

__all__ = ["WMSClient"]


class WMSClient:
    """Submit (with sandbox upload), kill, delete, reschedule and reset jobs."""

    def __init__(self, **kwargs: Any) -> None:
        self.jobManager = JobManagerClient(**kwargs)
        self.sandboxClient = SandboxStoreClient(**kwargs)

    def prepareInputSandbox(self, jdl: str, baseDir: str | Path | None = None) -> DReturnType:
        """The JDL with its local InputSandbox files uploaded: ``S_OK(jdl text)``.

        Relative file names are taken from ``baseDir`` (default: the current directory).
        """
        try:
            ad = parseJDL(jdl)
        except JDLError as exc:
            return S_ERROR(EWMSJDL, str(exc))
        entries = ad.getListFromExpression("InputSandbox")
        local = [e for e in entries if e.strip() and not e.startswith("SB:")
                 and not e.upper().startswith("LFN:")]
        if not local:
            return S_OK(jdl)
        base = Path(baseDir) if baseDir else Path.cwd()
        paths = [Path(e) if Path(e).is_absolute() else base / e for e in local]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            return S_ERROR(EWMSJDL, f"input sandbox files not found: {', '.join(missing)}")
        uploaded = self.sandboxClient.uploadFilesAsSandbox(paths)
        if not uploaded["OK"]:
            return S_ERROR(f"cannot upload the input sandbox: {uploaded['Message']}")
        kept = [e for e in entries if e not in local]
        ad["InputSandbox"] = [*kept, uploaded["Value"]]
        return S_OK(ad.asJDL())

    def submitJob(self, jdl: str, jobDescriptionObject: Any = None,
                  baseDir: str | Path | None = None) -> DReturnType:
        """Upload the input sandbox and submit: ``S_OK(jobID)`` (a list for a parametric
        JDL), with the same value under ``JobID``."""
        del jobDescriptionObject
        prepared = self.prepareInputSandbox(jdl, baseDir)
        if not prepared["OK"]:
            return prepared
        return self.jobManager.submitJob(prepared["Value"])

    def killJob(self, jobID: Any, force: bool = False) -> DReturnType:
        """Kill jobs."""
        return self.jobManager.killJob(jobID, force)

    def deleteJob(self, jobID: Any, force: bool = False) -> DReturnType:
        """Delete jobs (and their sandboxes)."""
        return self.jobManager.deleteJob(jobID, force)

    def rescheduleJob(self, jobID: Any) -> DReturnType:
        """Reschedule jobs."""
        return self.jobManager.rescheduleJob(jobID)

    def resetJob(self, jobID: Any) -> DReturnType:
        """Reset jobs."""
        return self.jobManager.resetJob(jobID)
