"""DIRAC's InputData optimizer: where are a job's input files, and so where may it run.

JobPath puts ``InputData`` between JobSanity and JobScheduling for a job whose JDL
has ``InputData`` (Executor/Optimizers.py).  This module holds the step's logic,
apart from the JobDB transactions:

* :func:`inputDataLFNs`: the LFNs of the JDL (``LFN:`` prefixes dropped, normalised);
* :func:`resolveInputData`: asks the file catalogue (``getReplicasForJobs``, the
  replicas a job may read) and answers the replicas per LFN, the LFNs without any
  (missing from the catalogue, or with no active replica) and the candidate sites:
  those at which every file has a replica, from the Configuration's
  ``Resources/Sites/<grid>/<site>/SE`` (Core/Utilities/SiteSEMapping.py), or None
  when no SE holding the data is at a configured site (nothing to restrict).

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

__all__ = ["INPUT_DATA", "MAX_WAIT", "NOT_AVAILABLE", "inputDataLFNs", "resolveInputData"]

#: The optimizer's name (minor status while the job waits for it, DIRAC's).
INPUT_DATA = "InputData"
#: The reason a job fails when some of its input files have no replica (DIRAC's wording).
NOT_AVAILABLE = "Input data not available"


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


def resolveInputData(catalog: ReplicaSource, lfns: list[str],
                     tree: dict[str, Any] | None = None) -> DReturnType:
    """Ask ``catalog`` where ``lfns`` are.

    ``S_OK({"Replicas": {lfn: [SE, ...]}, "Missing": {lfn: reason}, "Sites": [...] or
    None})``; S_ERROR when the catalogue could not answer (try again later).
    ``tree``: the configuration to map SEs to sites (default: gConfig's).
    """
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
    sites = sitesHoldingAll(replicas, tree) if replicas and not missing else None
    return S_OK({"Replicas": replicas, "Missing": missing, "Sites": sites})
