"""What the DataManagement System's services, clients and commands share.

* LFN arguments in DIRAC's bulk convention (:func:`checkArgumentFormat`);
* adler32 checksums as DIRAC writes them (8 lowercase hex digits, :func:`fileAdler`);
* the user's VO and home directory (:func:`getVOForCredentials`, :func:`userHome`);
* the broker service that serves a storage element (:func:`seServiceName`).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import zlib
from collections.abc import Iterable
from typing import Any

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

__all__ = [
    "CATALOG_SERVICE",
    "DEFAULT_SE",
    "DEFAULT_VO",
    "MAX_LFN_LENGTH",
    "adlerOfBytes",
    "checkArgumentFormat",
    "combineAdler",
    "fileAdler",
    "JOB_AGENT_PROPERTY",
    "getVOForCredentials",
    "homeOwner",
    "isJobAgent",
    "normalizeLFN",
    "parseMetaConditions",
    "sameChecksum",
    "seServiceName",
    "userHome",
]

#: The file catalogue's service.
CATALOG_SERVICE = "DataManagement/FileCatalog"
#: The storage element a DataManagement worker serves when the Configuration declares none.
DEFAULT_SE = "SE-USER"
#: The VO of a user whose group names none and when ``DIRAC_VO`` is not set.
DEFAULT_VO = "dirac"
#: Longest LFN accepted (DIRAC's DFC column is 255 for names; whole paths are bounded here).
MAX_LFN_LENGTH = 1024

_SE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def normalizeLFN(lfn: Any) -> str:
    """``/vo/user/a/alice/f`` from ``LFN:/vo//user/a/alice/./f``; ValueError if not an LFN.

    An LFN is an absolute POSIX path without ``..``, NUL or control characters.
    """
    if not isinstance(lfn, str):
        raise ValueError(f"an LFN must be text, not {type(lfn).__name__}")
    text = lfn.strip()
    if text.startswith("LFN:"):
        text = text[4:]
    if not text.startswith("/"):
        raise ValueError(f"LFN {lfn!r} is not an absolute path")
    if len(text) > MAX_LFN_LENGTH:
        raise ValueError(f"LFN longer than {MAX_LFN_LENGTH} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise ValueError(f"LFN {lfn!r} contains control characters")
    if ".." in text.split("/"):
        raise ValueError(f"LFN {lfn!r} contains '..'")
    normalized = posixpath.normpath(text)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    return normalized


def checkArgumentFormat(path: Any) -> DReturnType:
    """DIRAC's bulk argument: ``S_OK({lfn: params})`` from a str, a list/tuple/set or a dict.

    Every LFN is normalised (a leading ``LFN:`` stripped); an empty argument, a value that
    is no LFN at all, or an argument of another type is ``S_ERROR(EINVAL)``.  A list's
    items have no parameters (``{lfn: None}``).  The first bad LFN fails the argument
    (callers that must keep going past bad LFNs use :func:`splitLFNs`).
    """
    split = splitLFNs(path)
    if not split["OK"]:
        return split
    good, failed = split["Value"]
    if failed:
        lfn, reason = next(iter(failed.items()))
        return S_ERROR(errno.EINVAL, reason if lfn in reason else f"{lfn}: {reason}")
    return S_OK(good)


def splitLFNs(path: Any) -> DReturnType:
    """Like :func:`checkArgumentFormat`, but bad LFNs go to a Failed dict instead.

    ``S_OK((good, failed))``: ``good`` is ``{normalised lfn: params}``, ``failed`` is
    ``{given lfn (as text): reason}``.  S_ERROR only for an empty or wrongly typed argument.
    """
    if isinstance(path, str):
        items: dict[Any, Any] = {path: None} if path.strip() else {}
    elif isinstance(path, (list, tuple, set, frozenset)):
        items = dict.fromkeys(p if isinstance(p, (str, int, float, bytes)) else repr(p)
                              for p in path)
    elif isinstance(path, dict):
        items = path
    else:
        return S_ERROR(errno.EINVAL, f"Wrong argument type {type(path).__name__}: expected an "
                                     f"LFN, a list of LFNs or a dict {{lfn: parameters}}")
    if not items:
        return S_ERROR(errno.EINVAL, "Empty LFN argument")
    good: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for lfn, params in items.items():
        try:
            good[normalizeLFN(lfn)] = params
        except ValueError as exc:
            failed[str(lfn)] = str(exc)
    return S_OK((good, failed))


# ----------------------------------------------------------------- checksums
def adlerOfBytes(data: bytes, value: int = 1) -> int:
    """The running adler32 of ``data`` continuing from ``value`` (1 at the start)."""
    return zlib.adler32(data, value)


def formatAdler(value: int) -> str:
    """An adler32 value as DIRAC stores it: 8 lowercase hex digits."""
    return f"{value & 0xFFFFFFFF:08x}"


def fileAdler(path: str | os.PathLike[str], blockSize: int = 4 * 2**20) -> str:
    """The adler32 of a file as 8 hex digits, read in blocks (bounded memory)."""
    value = 1
    with open(path, "rb") as fh:
        while block := fh.read(blockSize):
            value = zlib.adler32(block, value)
    return formatAdler(value)


def combineAdler(parts: Iterable[bytes]) -> str:
    """The adler32 of the concatenation of ``parts`` (8 hex digits)."""
    value = 1
    for part in parts:
        value = zlib.adler32(part, value)
    return formatAdler(value)


def sameChecksum(one: Any, two: Any) -> bool:
    """Whether two adler32 texts are equal, as DIRAC compares them (case and leading
    zeros do not matter)."""
    try:
        return int(str(one), 16) == int(str(two), 16)
    except ValueError:
        return False


# --------------------------------------------------------------- identities
def getVOForCredentials(credentials: dict[str, Any] | None = None) -> str:
    """The caller's VO: ``credentials["VO"]``, else the Registry's ``VO`` option of its
    group, else ``DIRAC_VO``, else :data:`DEFAULT_VO`."""
    credentials = credentials or {}
    vo = credentials.get("VO")
    if isinstance(vo, str) and vo.strip():
        return vo.strip()
    group = credentials.get("group")
    if isinstance(group, str) and group:
        try:
            from DIRAC import gConfig

            value = gConfig.getValue(f"/Registry/Groups/{group}/VO", "")
        except Exception:  # a missing or broken configuration: fall back below
            value = ""
        if isinstance(value, str) and value.strip():
            return value.strip()
    return os.environ.get("DIRAC_VO", "").strip() or DEFAULT_VO


def userHome(username: str, vo: str) -> str:
    """DIRAC's home directory of a user: ``/<vo>/user/<initial>/<username>``."""
    return f"/{vo}/user/{username[:1]}/{username}"


#: The property of job agents (DIRAC's pilots): they write a job's output data into its
#: owner's home, in the owner's name (docs/security.md, "Job agents and the owner's data").
JOB_AGENT_PROPERTY = "GenericPilot"

_HOME = re.compile(r"^/([^/]+)/user/([^/])/([^/]+)(?:/|$)")


def homeOwner(lfn: str) -> tuple[str, str] | None:
    """``(vo, username)`` when the normalised ``lfn`` lies in (or is) a user's home
    ``/<vo>/user/<initial>/<username>``, else None."""
    match = _HOME.match(lfn)
    if not match or not match.group(3).startswith(match.group(2)):
        return None
    return match.group(1), match.group(3)


def isJobAgent(credentials: dict[str, Any] | None) -> bool:
    """Whether the caller is a job agent (its group has :data:`JOB_AGENT_PROPERTY`)."""
    return JOB_AGENT_PROPERTY in set((credentials or {}).get("properties") or ())


def checkSEName(name: Any) -> str:
    """``name`` if it is a valid storage element name, else ValueError."""
    if not isinstance(name, str) or not _SE_NAME.match(name):
        raise ValueError(f"invalid storage element name {name!r}: letters, digits, '-', '_' "
                         f"and '.', at most 64")
    return name


def seServiceName(name: str) -> str:
    """The service serving storage element ``name``: ``DataManagement/StorageElement_<name>``
    with every character other than a letter or digit written ``_``."""
    checkSEName(name)
    return "DataManagement/StorageElement_" + re.sub(r"[^A-Za-z0-9]", "_", name)


_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$")


def _typed(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parseMetaConditions(conditions: Iterable[str]) -> dict[str, Any]:
    """A ``findFilesByMetadata`` query from command-line conditions, as DIRAC's
    ``dirac-dms-find-lfns`` writes them: ``Energy>100``, ``Particle=muon``,
    ``Particle=muon,electron`` (any of), ``Size<=1000``, ``Kind!=raw``.

    Several conditions on one field combine (``Energy>100 Energy<300``); numbers are
    sent as numbers.  ValueError names a condition that does not parse.
    """
    query: dict[str, Any] = {}
    for condition in conditions:
        match = _CONDITION.match(condition)
        if not match or not match.group(3):
            raise ValueError(f"cannot read condition {condition!r}: expected NAME OP VALUE "
                             f"with OP one of = != < > <= >=")
        name, op, text = match.groups()
        values = [_typed(v.strip()) for v in text.split(",") if v.strip()]
        if op in ("=", "!=") and len(values) > 1:
            op, value = ("in" if op == "=" else "nin"), values
        else:
            value = _typed(text)
        spec = query.setdefault(name, {})
        if op in spec:
            raise ValueError(f"condition {name}{op} given twice")
        spec[op] = value
    return query
