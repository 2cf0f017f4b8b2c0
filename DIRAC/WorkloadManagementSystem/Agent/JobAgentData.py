"""The job agent's data steps (DIRAC's JobWrapper: input data resolution, output data).

* :func:`downloadInputData`: before the payload, every ``InputData`` LFN is copied
  into the job's directory (its base name) with ``DataManager.getFile``, from a
  replica at an SE of the agent's own site when there is one
  (``Resources/Sites/<grid>/<site>/SE``), else from any active replica.
* :func:`uploadOutputData`: after a successful run, every ``OutputData`` file is put
  and registered with ``DataManager.putAndRegister`` to the first ``OutputSE`` that
  takes it (Utilities/OutputData.py: the LFN rule and the default SE).  An output
  LFN must lie in the job owner's home: the agent writes there in the owner's name
  (docs/security.md, "Job agents and the owner's data"), and nowhere else.

Both answer ``S_OK`` (the LFNs done) or ``S_ERROR`` with the reason the job fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.Core.Utilities.SiteSEMapping import getSEsForSite
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    getVOForCredentials,
    normalizeLFN,
    userHome,
)
from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd
from DIRAC.WorkloadManagementSystem.Utilities.OutputData import (
    getOutputLFN,
    outputDataEntries,
    outputSEs,
)

__all__ = ["downloadInputData", "uploadOutputData"]


class DataClient(Protocol):
    """What the steps need of a DataManager."""

    def getActiveReplicas(self, lfns: Any, getUrl: bool = True, diskOnly: bool = False,
                          preferDisk: bool = False) -> DReturnType:
        """``{lfn: {SE: PFN}}``."""

    def getFile(self, lfn: Any, destinationDir: str = "", sourceSE: str | None = None
                ) -> DReturnType:
        """Download into ``destinationDir``."""

    def putAndRegister(self, lfn: str, fileName: str, diracSE: str, guid: str | None = None,
                       path: str | None = None, checksum: str | None = None,
                       overwrite: bool = False) -> DReturnType:
        """Upload and register."""


def _bulkReason(result: DReturnType, lfn: str) -> str | None:
    """Why a bulk call did not do ``lfn`` (None: it did)."""
    if not result["OK"]:
        return str(result["Message"])
    if lfn in result["Value"]["Successful"]:
        return None
    return str(result["Value"]["Failed"].get(lfn, "no answer for this file"))


def downloadInputData(dm: DataClient, ad: ClassAd, workdir: Path, site: str) -> DReturnType:
    """Copy the job's input data into ``workdir``: ``S_OK([lfn, ...])`` or S_ERROR."""
    try:
        lfns = [normalizeLFN(str(e)) for e in ad.getListFromExpression("InputData")
                if str(e).strip()]
    except ValueError as exc:
        return S_ERROR(f"invalid InputData: {exc}")
    if not lfns:
        return S_OK([])
    names: dict[str, str] = {}
    for lfn in lfns:
        other = names.setdefault(os.path.basename(lfn), lfn)
        if other != lfn:
            return S_ERROR(f"input files {other} and {lfn} have the same name")
    replicas = dm.getActiveReplicas(lfns)
    if not replicas["OK"]:
        return S_ERROR(f"cannot get the replicas of the input data: {replicas['Message']}")
    missing = {lfn: replicas["Value"]["Failed"].get(lfn, "No active replica")
               for lfn in lfns if not replicas["Value"]["Successful"].get(lfn)}
    if missing:
        return S_ERROR("input data not available: " + ", ".join(
            f"{lfn} ({reason})" for lfn, reason in sorted(missing.items())))
    local = set(getSEsForSite(site)["Value"])
    for lfn in lfns:
        ses = set(replicas["Value"]["Successful"][lfn])
        reasons = []
        for source in [*sorted(ses & local), None]:  # a local replica first, then any
            got = dm.getFile(lfn, str(workdir), sourceSE=source)
            reason = _bulkReason(got, lfn)
            if reason is None:
                break
            reasons.append(f"{source or 'any replica'}: {reason}")
        else:
            return S_ERROR(f"cannot download {lfn}: {'; '.join(reasons)}")
    return S_OK(lfns)


def uploadOutputData(dm: DataClient, ad: ClassAd, workdir: Path, jobID: int, owner: str,
                     ownerGroup: str, tree: dict[str, Any] | None = None) -> DReturnType:
    """Put and register the job's output data: ``S_OK({lfn: SE})`` or S_ERROR (the
    files uploaded before the failure stay registered, as in DIRAC)."""
    entries = outputDataEntries(ad)
    if not entries:
        return S_OK({})
    vo = getVOForCredentials({"group": ownerGroup})
    outputPath = str(ad.get("OutputPath", "") or "")
    plan: list[tuple[Path, str]] = []
    for entry in entries:
        try:
            name, lfn = getOutputLFN(entry, owner, vo, jobID, outputPath)
        except ValueError as exc:
            return S_ERROR(f"invalid OutputData {entry!r}: {exc}")
        if not lfn.startswith(userHome(owner, vo) + "/"):
            return S_ERROR(f"{lfn}: output data go into the job owner's home "
                           f"({userHome(owner, vo)}), not elsewhere")
        path = workdir / name
        if not path.is_file():
            return S_ERROR(f"output data file {name} was not produced by the job")
        plan.append((path, lfn))
    ses = outputSEs(ad, tree)
    done: dict[str, str] = {}
    for path, lfn in plan:
        reasons = []
        for se in ses:
            put = dm.putAndRegister(lfn, str(path), se)
            reason = _bulkReason(put, lfn)
            if reason is None:
                done[lfn] = se
                break
            reasons.append(f"{se}: {reason}")
        else:
            return S_ERROR(f"cannot upload {path.name} as {lfn}: {'; '.join(reasons)}")
    return S_OK(done)
