"""From a submitted JDL to the jobs to store: parse, expand, validate, extract attributes.

Pure logic (no database): :func:`prepareJobs` is what ``submitJob`` runs before
anything is written, so a malformed JDL never leaves a half-submitted job behind.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd, Expression, JDLError, parseJDL
from DIRAC.WorkloadManagementSystem.Utilities.OutputData import checkDataAttributes
from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import expandParametricJobs

__all__ = [
    "ATTRIBUTE_LENGTHS",
    "DEFAULT_ATTRIBUTES",
    "IDENTITY_ATTRIBUTES",
    "PreparedJob",
    "jobAttributesFromClassAd",
    "prepareJobs",
]

#: Longest value of the text job attributes (the JobDB column sizes).
ATTRIBUTE_LENGTHS: dict[str, int] = {
    "JobType": 32,
    "JobGroup": 128,
    "Site": 100,
    "JobName": 255,
    "Owner": 255,
    "OwnerGroup": 255,
    "VO": 64,
}

#: Job attributes a JDL does not set, as DIRAC's JobDB defaults them.
DEFAULT_ATTRIBUTES: dict[str, Any] = {
    "JobType": "User",
    "JobGroup": "00000000",
    "Site": "ANY",
    "JobName": "Unknown",
    "UserPriority": 0,
}

#: JDL attributes the server sets itself: a value in the submitted JDL is replaced.
IDENTITY_ATTRIBUTES = ("Owner", "OwnerGroup", "OwnerDN", "VO", "JobID", "Status",
                       "MinorStatus", "SubmissionTime")

#: ``Priority`` bounds (DIRAC's JobManifest).
MIN_PRIORITY, MAX_PRIORITY = 0, 10


@dataclasses.dataclass
class PreparedJob:
    """One job ready to insert: its Jobs-table attributes and its description."""

    attributes: dict[str, Any]
    classAd: ClassAd


def _text(ad: ClassAd, name: str, default: str) -> str:
    if name not in ad:
        return default
    value = ad[name]
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, Expression):
        text = value.text  # a bare word, e.g. ``JobGroup = prod1;``
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)
    else:
        kind = "list" if isinstance(value, list) else type(value).__name__
        raise JDLError(f"{name} must be a string, not a {kind}")
    limit = ATTRIBUTE_LENGTHS.get(name)
    if limit and len(text) > limit:
        raise JDLError(f"{name} is longer than {limit} characters")
    return text or default


def _site(ad: ClassAd) -> str:
    if "Site" not in ad:
        return DEFAULT_ATTRIBUTES["Site"]
    value = ad["Site"]
    if isinstance(value, list):
        sites = []
        for item in value:
            if not isinstance(item, (str, Expression)):
                raise JDLError(f"Site must be a site name or a list of site names, "
                               f"not {value!r}")
            name = str(item).strip()
            if name and name.upper() != "ANY" and name not in sites:
                sites.append(name)
        if not sites:
            return "ANY"
        site = sites[0] if len(sites) == 1 else "Multiple"
        if len(site) > ATTRIBUTE_LENGTHS["Site"]:
            raise JDLError(f"Site is longer than {ATTRIBUTE_LENGTHS['Site']} characters")
        return site
    site = _text(ad, "Site", "ANY")
    return "ANY" if site.upper() == "ANY" else site


def _priority(ad: ClassAd) -> int:
    if "Priority" not in ad:
        return DEFAULT_ATTRIBUTES["UserPriority"]
    value = ad["Priority"]
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise JDLError(f"Priority must be an integer, not {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise JDLError(f"Priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, "
                       f"not {value}")
    return value


def _check_numeric(ad: ClassAd, name: str) -> None:
    if name in ad:
        value = ad[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise JDLError(f"{name} must be a non-negative number, not {value!r}")


def _check_string_list(ad: ClassAd, name: str) -> None:
    if name in ad:
        value = ad[name]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, (str, Expression)):
                raise JDLError(f"{name} must be a file name or a list of file names, "
                               f"not {value!r}")


def _check_data(ad: ClassAd) -> None:
    """InputData, OutputData, OutputSE and OutputPath as the job path will use them
    (an error at submission rather than a job failing later)."""
    problem = checkDataAttributes(ad)
    if problem:
        raise JDLError(problem)


def jobAttributesFromClassAd(ad: ClassAd) -> dict[str, Any]:
    """The Jobs-table attributes a (non-parametric) job description sets.

    Raises :class:`JDLError` when a mandatory attribute is missing or a value has
    the wrong type.  Owner, OwnerGroup and VO are not taken from the JDL.
    """
    if "Executable" not in ad:
        raise JDLError("missing mandatory attribute Executable")
    executable = ad["Executable"]
    if not isinstance(executable, (str, Expression)) or not str(executable).strip():
        raise JDLError(f"Executable must be a non-empty string, not {executable!r}")
    if "Arguments" in ad and not isinstance(ad["Arguments"], (str, Expression, int, float)):
        raise JDLError(f"Arguments must be a string, not {ad['Arguments']!r}")
    for name in ("CPUTime", "NumberOfProcessors", "MaxNumberOfProcessors",
                 "MinNumberOfProcessors"):
        _check_numeric(ad, name)
    for name in ("InputSandbox", "OutputSandbox", "InputData", "OutputData", "OutputSE"):
        _check_string_list(ad, name)
    _check_data(ad)
    return {
        "JobName": _text(ad, "JobName", DEFAULT_ATTRIBUTES["JobName"]),
        "JobGroup": _text(ad, "JobGroup", DEFAULT_ATTRIBUTES["JobGroup"]),
        "JobType": _text(ad, "JobType", DEFAULT_ATTRIBUTES["JobType"]),
        "Site": _site(ad),
        "UserPriority": _priority(ad),
    }


def prepareJobs(jdl: str, maxParametricJobs: int | None = None) -> list[PreparedJob]:
    """Parse ``jdl`` and return the job(s) it describes, validated.

    A parametric JDL gives several jobs; raises :class:`JDLError` on any problem.
    """
    ad = parseJDL(jdl)
    for name in IDENTITY_ATTRIBUTES:
        ad.deleteAttribute(name)
    jobs = []
    for number, job in enumerate(expandParametricJobs(ad, maxParametricJobs)):
        try:
            attributes = jobAttributesFromClassAd(job)
        except JDLError as exc:
            if "ParameterNumber" in job:
                raise JDLError(f"parametric job {number}: {exc}") from None
            raise
        jobs.append(PreparedJob(attributes, job))
    return jobs
