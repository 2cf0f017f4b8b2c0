"""Parametric jobs: one JDL with ``Parameters`` describes several jobs.

Forms accepted (DIRAC's):

* ``Parameters = {"a", "b", 3};`` a list: one job per value;
* ``Parameters = 3;`` a count, with ``ParameterStart`` (default 1), ``ParameterStep``
  (default 0) and ``ParameterFactor`` (default 1): value 0 is the start, value ``i``
  is ``value[i-1] * factor + step`` (with none of the three: 1, 1, 1, as DIRAC);
* named sequences: ``Parameters = 2; Parameters.X = {...}; Parameters.Y = {...};``
  (or ``ParameterStart.X = ...`` etc.), every list as long as ``Parameters``.

In each job's description ``%s`` (the unnamed sequence) and ``%(X)s`` (sequence X)
become the job's parameter value, ``%n`` its number (zero-padded to the same
width), and the job gets ``Parameter = value`` (``Parameter.<X>`` for sequence X) and
``ParameterNumber = n``.  ``%j`` (the job ID) is left for the job to resolve when it runs.

DIRAC's functions return ``S_OK``/``S_ERROR`` (``EWMSJDL``) and take DIRAC's ``ClassAd``
(``DIRAC.Core.Utilities.ClassAd.ClassAdLight``): :func:`getParameterVectorLength` ->
``S_OK(count or None)``, :func:`generateParametricJobs` -> ``S_OK([JDL text per job])``.
The services use :func:`expandParametricJobs`, which gives ClassAd objects and raises
:class:`JDLError`.
"""

from __future__ import annotations

import re
from typing import Any

from diracmq.broker.derrno import EWMSJDL
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.WorkloadManagementSystem.Utilities.JDL import (
    ClassAd,
    Expression,
    JDLError,
    parseValue,
)

__all__ = ["expandParametricJobs", "generateParametricJobs", "getParameterVectorLength"]

_SEQUENCE_KEYS = ("ParameterStart", "ParameterStep", "ParameterFactor")
_DEFAULTS = {"ParameterStart": 1, "ParameterStep": 0, "ParameterFactor": 1}
_UNNAMED = ""  # the sequence of ``Parameters`` itself (``%s``)


def _number(ad: ClassAd, name: str) -> int | float:
    value = ad[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JDLError(f"{name} must be a number, not {value!r}")
    return value


def _vectorLength(ad: ClassAd) -> int | None:
    """How many jobs ``ad`` describes (None: not parametric); JDLError if inconsistent.

    Every ``Parameters`` and ``Parameters.<X>`` attribute must agree, as in DIRAC.
    """
    count: int | None = None
    for name in ad:
        base = name.split(".", 1)[0]
        if base.lower() != "parameters":
            continue
        value = ad[name]
        if isinstance(value, list):
            this = len(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            this = value
        elif isinstance(value, float) and value.is_integer():
            this = int(value)
        else:
            raise JDLError(f"{name} must be a number of jobs or a list of values, "
                           f"not {value!r}")
        if count is not None and count != this:
            raise JDLError(f"Different length of parameter vectors: for {name}, "
                           f"{count} != {this}")
        count = this
    if count is not None and count <= 0:
        raise JDLError(f"Illegal number of job parameters {count}")
    return count


def getParameterVectorLength(jobClassAd: ClassAd) -> DReturnType:
    """``S_OK(number of jobs)`` of a parametric description, ``S_OK(None)`` if it is not
    parametric, ``S_ERROR(EWMSJDL)`` when its parameter vectors disagree."""
    try:
        return S_OK(_vectorLength(jobClassAd))
    except JDLError as exc:
        return S_ERROR(EWMSJDL, str(exc))


def _sequences(ad: ClassAd, count: int) -> dict[str, list[Any]]:
    """Sequence name -> its ``count`` values; removes the sequence attributes from ``ad``."""
    sequences: dict[str, list[Any]] = {}
    numeric: dict[str, dict[str, int | float]] = {}
    for name in list(ad):
        base, _, seq = name.partition(".")
        base_l = base.lower()
        if base_l == "parameters" and seq:
            values = ad[name]
            if not isinstance(values, list):
                raise JDLError(f"Attribute {name} must be a list")
            if len(values) != count:
                raise JDLError(f"Different length of parameter vectors: {name} has "
                               f"{len(values)} values, Parameters says {count}")
            sequences[seq] = values
            del ad[name]
        for key in _SEQUENCE_KEYS:
            if base_l == key.lower():
                numeric.setdefault(seq or _UNNAMED, {})[key] = _number(ad, name)
                del ad[name]
    top = ad["Parameters"]
    del ad["Parameters"]
    if isinstance(top, list):
        if _UNNAMED in numeric:
            raise JDLError("Parameters is a list: ParameterStart/Step/Factor cannot be "
                           "used with it")
        sequences[_UNNAMED] = top
    for seq, spec in numeric.items():
        if seq in sequences:
            raise JDLError(f"sequence {seq} is given both as a list and by ParameterStart/Step")
        start = spec.get("ParameterStart", _DEFAULTS["ParameterStart"])
        step = spec.get("ParameterStep", _DEFAULTS["ParameterStep"])
        factor = spec.get("ParameterFactor", _DEFAULTS["ParameterFactor"])
        values = [start]
        for _ in range(1, count):
            values.append(values[-1] * factor + step)
        sequences[seq] = values
    if _UNNAMED not in sequences:  # as DIRAC: ``Parameters = 3`` alone gives 1, 1, 1
        values = [_DEFAULTS["ParameterStart"]] * count
        sequences[_UNNAMED] = values
    return sequences


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Expression):
        return value.text
    if isinstance(value, (int, float)):
        return repr(value)
    raise JDLError(f"a parameter value must be a string or a number, not {value!r}")


def _substitute(value: Any, replace: dict[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, text in replace.items():
            value = value.replace(placeholder, text)
        return value
    if isinstance(value, list):
        return [_substitute(v, replace) for v in value]
    if isinstance(value, ClassAd):
        new = ClassAd()
        for name, v in value.items():
            new[name] = _substitute(v, replace)
        return new
    if isinstance(value, Expression):
        text = _substitute(value.text, replace)
        if text == value.text:
            return value
        try:
            return parseValue(text)  # ``CPUTime = %s`` becomes a number
        except JDLError:
            return Expression(text)
    return value


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def generateParametricJobs(jobClassAd: ClassAd, maxJobs: int | None = None) -> DReturnType:
    """``S_OK([JDL text of each job])`` (``[jobClassAd.asJDL()]`` when it is not
    parametric), or ``S_ERROR(EWMSJDL)`` for an inconsistent description."""
    try:
        return S_OK([job.asJDL() for job in expandParametricJobs(jobClassAd, maxJobs)])
    except JDLError as exc:
        return S_ERROR(EWMSJDL, str(exc))


def expandParametricJobs(ad: ClassAd, maxJobs: int | None = None) -> list[ClassAd]:
    """The job descriptions ``ad`` stands for: ``[ad]`` when it is not parametric.

    Raises :class:`JDLError` for a malformed parametric description or more than
    ``maxJobs`` jobs.
    """
    count = _vectorLength(ad)
    if count is None:
        return [ad]
    if maxJobs is not None and count > maxJobs:
        raise JDLError(f"Number of parametric jobs ({count}) exceeds the limit of {maxJobs}")
    template = ad.copy()
    sequences = _sequences(template, count)
    named = set(sequences)
    for name, value in template.items():
        for text in _strings(value):
            for ref in _PLACEHOLDER.findall(text):
                if ref not in named:
                    raise JDLError(f"{name} uses %({ref})s but there is no parameter "
                                   f"sequence {ref} (have: {', '.join(sorted(named))})")
    width = len(str(count - 1))
    jobs = []
    for n in range(count):
        replace = {f"%({seq})s": _text(values[n]) for seq, values in sequences.items()}
        if _UNNAMED in sequences:
            replace["%s"] = _text(sequences[_UNNAMED][n])
        replace["%n"] = str(n).zfill(width)
        job = ClassAd()
        for name, value in template.items():
            job[name] = _substitute(value, replace)
        for seq, values in sequences.items():
            job["Parameter" if seq == _UNNAMED else f"Parameter.{seq}"] = values[n]
        job["ParameterNumber"] = n
        jobs.append(job)
    return jobs


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Expression):
        return [value.text]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, ClassAd):
        return [s for _, v in value.items() for s in _strings(v)]
    return []
