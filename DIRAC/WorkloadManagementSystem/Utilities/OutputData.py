"""Where a job's output data go: DIRAC's JobWrapper rules for ``OutputData``.

* :func:`getOutputLFN`: the LFN of one ``OutputData`` entry.  A plain file name
  ``out.root`` (or a relative path; its base name is kept) becomes
  ``/<vo>/user/<initial>/<owner>/<OutputPath>/out.root``, where ``OutputPath``
  defaults to ``<jobID // 1000>/<jobID>``; an ``LFN:/...`` entry is taken as given
  (its local file is its base name).  These are DIRAC's rules.
* :func:`outputSEs`: the SEs to try, in order: the JDL's ``OutputSE`` (a name of a
  storage element, or of a group ``Resources/StorageElementGroups/<name>``), else
  DIRAC's default group ``SE-USER`` (its members when the Configuration defines the
  group, else the storage element ``SE-USER`` that a DataManagement worker serves
  with no configuration).
* :func:`checkDataAttributes`: what submission refuses (a clear reason, not a job
  that fails later).
"""

from __future__ import annotations

import posixpath
from typing import Any

from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    DEFAULT_SE,
    checkSEName,
    normalizeLFN,
    userHome,
)
from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd

__all__ = ["checkDataAttributes", "getOutputLFN", "outputDataEntries", "outputSEs"]


def outputDataEntries(ad: ClassAd) -> list[str]:
    """The JDL's ``OutputData`` entries (stripped, empty ones dropped)."""
    return [str(e).strip() for e in ad.getListFromExpression("OutputData") if str(e).strip()]


def _relative(path: str, what: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{what} {path!r} contains '..'")
    return "/".join(parts)


def getOutputLFN(outputFile: str, owner: str, vo: str, jobID: int, outputPath: str = ""
                 ) -> tuple[str, str]:
    """``(local file, LFN)`` of one ``OutputData`` entry (ValueError when it cannot be
    one: an empty name, ``..``, an invalid LFN)."""
    entry = str(outputFile).strip()
    if entry.startswith("LFN:"):
        lfn = normalizeLFN(entry)
        return posixpath.basename(lfn), lfn
    local = _relative(entry, "output file")
    if not local:
        raise ValueError(f"invalid output file name {outputFile!r}")
    if not owner:
        raise ValueError("the job has no owner")
    sub = _relative(str(outputPath or ""), "OutputPath")
    if not sub:
        sub = f"{int(jobID) // 1000}/{int(jobID)}"
    lfn = normalizeLFN(f"{userHome(owner, vo)}/{sub}/{posixpath.basename(local)}")
    return local, lfn


def outputSEs(ad: ClassAd, tree: dict[str, Any] | None = None) -> list[str]:
    """The storage elements to upload the output data to, in the order to try them."""
    wanted = [str(s).strip() for s in ad.getListFromExpression("OutputSE") if str(s).strip()]
    names: list[str] = []
    for name in wanted or [DEFAULT_SE]:
        for se in _group(name, tree) or [name]:
            if se not in names:
                names.append(se)
    return names


def _group(name: str, tree: dict[str, Any] | None) -> list[str]:
    """The members of the SE group ``name`` (empty when there is no such group)."""
    if tree is None:
        try:
            from DIRAC import gConfig

            value: Any = gConfig.getValue(f"/Resources/StorageElementGroups/{name}", [])
        except Exception:  # no configuration: no groups
            return []
    else:
        value = tree.get("Resources", {}).get("StorageElementGroups", {}).get(name, [])
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value or [] if str(v).strip()] \
        if isinstance(value, (list, tuple, str)) else []


def checkDataAttributes(ad: ClassAd) -> str | None:
    """Why the JDL's InputData / OutputData / OutputSE / OutputPath cannot be used,
    or None when they can."""
    for entry in ad.getListFromExpression("InputData"):
        try:
            normalizeLFN(str(entry))
        except ValueError as exc:
            return f"invalid InputData: {exc}"
    path = ad.get("OutputPath", "")
    if path not in (None, ""):
        if not isinstance(path, str):
            return f"OutputPath must be a path, not {path!r}"
        try:
            _relative(path, "OutputPath")
        except ValueError as exc:
            return f"invalid OutputPath: {exc}"
    for entry in outputDataEntries(ad):
        try:
            getOutputLFN(entry, "someone", "vo", 1, "")
        except ValueError as exc:
            return f"invalid OutputData: {exc}"
    for se in ad.getListFromExpression("OutputSE"):
        try:
            checkSEName(str(se).strip())
        except ValueError as exc:
            return f"invalid OutputSE: {exc}"
    return None
