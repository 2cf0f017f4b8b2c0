"""DIRAC's InputData optimizer: where are a job's input files, and so where may it run.

JobPath puts ``InputData`` between JobSanity and JobScheduling for a job whose JDL
has ``InputData`` (Executor/Optimizers.py).  This module holds the step's logic,
apart from the JobDB transactions:

* :func:`inputDataLFNs`: the LFNs of the JDL (``LFN:`` prefixes dropped, normalised);
* :func:`sandboxLFNs`: the ``LFN:`` entries of its ``InputSandbox`` (DIRAC's "sandboxes
  may use the same storage": the job agent downloads them into the job's directory
  with the input sandbox, Agent/JobAgentData.py);
* :func:`resolveInputData`: asks the file catalogue (``getReplicasForJobs``, the
  replicas a job may read) and answers the replicas per LFN, the LFNs without any
  (missing from the catalogue, or with no active replica) and the candidate sites:
  those at which every input data file has a replica, from the Configuration's
  ``Resources/Sites/<grid>/<site>/SE`` (Core/Utilities/SiteSEMapping.py), or None
  when no SE holding the data is at a configured site (nothing to restrict).  The
  input sandbox's LFNs must have a replica too, but where does not restrict the
  sites: the agent fetches them from any SE, as DIRAC's JobWrapper does;
* :func:`notAvailable`: the reason a job fails for the LFNs without a replica.

A catalogue that cannot be asked (no worker, a timeout) is not the job's fault: the
optimizer leaves the job to be tried again later, and fails it only once the catalogue
has not answered for it during :data:`MAX_WAIT` seconds (``DIRAC_WMS_INPUTDATA_MAX_WAIT``,
default 600), saying why.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.Core.Utilities.SiteSEMapping import sitesHoldingAll
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import normalizeLFN
from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd

__all__ = ["INPUT_DATA", "MAX_WAIT", "NOT_AVAILABLE", "SANDBOX_NOT_AVAILABLE", "inputDataLFNs",
           "needsCatalogue", "notAvailable", "resolveInputData", "sandboxLFNs"]

#: The optimizer's name (minor status while the job waits for it, DIRAC's).
INPUT_DATA = "InputData"
#: The reason a job fails when some of its input files have no replica (DIRAC's wording).
NOT_AVAILABLE = "Input data not available"
#: The reason for an ``LFN:`` entry of the input sandbox without a replica.
SANDBOX_NOT_AVAILABLE = "Input sandbox not available"


def _maxWait() -> float:
    try:
        return max(0.0, float(os.environ.get("DIRAC_WMS_INPUTDATA_MAX_WAIT") or 600))
    except ValueError:
        return 600.0


#: Seconds a job waits for an unreachable catalogue (from its first failed try) before
#: it is failed.
MAX_WAIT = _maxWait()


class ReplicaSource(Protocol):
    """What the step needs of a catalogue client (FileCatalogClient has it)."""

    def getReplicasForJobs(self, lfns: Any, allStatus: bool = False,
                           timeout: float | None = None) -> DReturnType:
        """``S_OK({"Successful": {lfn: {SE: PFN}}, "Failed": {lfn: reason}})``."""


def inputDataLFNs(ad: ClassAd) -> list[str]:
    """The JDL's ``InputData`` as normalised LFNs, in order, without repeats
    (ValueError names an entry that is no LFN)."""
    lfns: list[str] = []
    for entry in ad.getListFromExpression("InputData"):
        entry = str(entry).strip()
        if not entry:
            continue
        lfn = normalizeLFN(entry)
        if lfn not in lfns:
            lfns.append(lfn)
    return lfns


def sandboxLFNs(ad: ClassAd) -> list[str]:
    """The ``LFN:`` entries (any case, as DIRAC) of the JDL's ``InputSandbox`` as
    normalised LFNs, in order, without repeats (ValueError names an entry that is no
    LFN)."""
    lfns: list[str] = []
    for entry in ad.getListFromExpression("InputSandbox"):
        entry = str(entry).strip()
        if entry[:4].upper() != "LFN:":
            continue
        try:
            lfn = normalizeLFN(entry[4:])
        except ValueError as exc:
            raise ValueError(f"{entry}: {exc}") from None
        if lfn not in lfns:
            lfns.append(lfn)
    return lfns


def needsCatalogue(ad: ClassAd) -> bool:
    """Whether the job names LFNs (``InputData``, ``LFN:`` input sandbox entries): the
    InputData step then checks they have replicas."""
    return bool(ad.getListFromExpression("InputData")) or any(
        str(e).strip()[:4].upper() == "LFN:" for e in ad.getListFromExpression("InputSandbox"))


def notAvailable(missing: dict[str, str], sandbox: list[str] | None = None) -> str:
    """The reason a job fails for ``missing`` (``{lfn: reason}``): "Input data not
    available: ..." and/or "Input sandbox not available: LFN:...", for the LFNs of
    ``sandbox`` that are not also input data."""
    inSandbox = set(sandbox or ())
    data = {lfn: why for lfn, why in missing.items() if lfn not in inSandbox}
    box = {lfn: why for lfn, why in missing.items() if lfn in inSandbox}
    parts = []
    if data:
        parts.append(f"{NOT_AVAILABLE}: " + ", ".join(
            f"{lfn} ({why})" for lfn, why in sorted(data.items())))
    if box:
        parts.append(f"{SANDBOX_NOT_AVAILABLE}: " + ", ".join(
            f"LFN:{lfn} ({why})" for lfn, why in sorted(box.items())))
    return "; ".join(parts)


def resolveInputData(catalog: ReplicaSource, lfns: list[str],
                     tree: dict[str, Any] | None = None,
                     sandbox: list[str] | None = None) -> DReturnType:
    """Ask ``catalog`` where ``lfns`` (the input data) and ``sandbox`` (the input
    sandbox's LFNs) are, in one call.

    ``S_OK({"Replicas": {lfn: [SE, ...]}, "Missing": {lfn: reason}, "Sites": [...] or
    None})``, the candidate sites from the input data only (None without input data);
    S_ERROR when the catalogue could not answer (try again later).
    ``tree``: the configuration to map SEs to sites (default: gConfig's).
    """
    data = list(lfns)
    lfns = data + [lfn for lfn in sandbox or () if lfn not in data]
    if not lfns:
        return S_OK({"Replicas": {}, "Missing": {}, "Sites": None})
    try:
        result = catalog.getReplicasForJobs(lfns)
    except Exception as exc:  # a client that raises instead of answering S_ERROR
        return S_ERROR(f"file catalogue: {type(exc).__name__}: {exc}")
    if not result["OK"]:
        return S_ERROR(f"file catalogue: {result['Message']}")
    value = result["Value"] if isinstance(result.get("Value"), dict) else {}
    successful = value.get("Successful") or {}
    failed = value.get("Failed") or {}
    replicas: dict[str, list[str]] = {}
    missing: dict[str, str] = {}
    for lfn in lfns:
        ses = successful.get(lfn)
        if ses:
            replicas[lfn] = sorted(ses)
        elif lfn in failed:
            missing[lfn] = str(failed[lfn])
        else:
            missing[lfn] = "No active replica" if lfn in successful else "No such file"
    dataReplicas = {lfn: replicas[lfn] for lfn in data if lfn in replicas}
    sites = sitesHoldingAll(dataReplicas, tree) if dataReplicas and not missing else None
    return S_OK({"Replicas": replicas, "Missing": missing, "Sites": sites})
