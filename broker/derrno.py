"""DIRAC-compatible error codes.

DIRAC reports errors as ``S_ERROR`` dicts carrying an ``Errno``.  Codes below
1000 are the operating system's (``errno``); DIRAC's own codes live in ranges:
10xx generic, 11xx core, 14xx configuration, 15xx WMS, 16xx DMS.  The values
of the DIRAC codes here are the documented ones, so clients that compare
``Errno`` against DIRAC's constants keep working.  The ``EMQ*`` codes after
``EMQCONN`` are ours (core range) for failures specific to RPC over RabbitMQ.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "ETYPE",
    "EIMPERR",
    "ENOMETH",
    "ECONF",
    "EVALUE",
    "EEEXCEPTION",
    "EDISET",
    "ENOAUTH",
    "EDB",
    "EMQCONN",
    "EMQNOQUEUE",
    "EMQNOWORKER",
    "EMQDECODE",
    "EMQENCODE",
    "EMQDEADLETTER",
    "ESECTION",
    "EWMSUKN",
    "EWMSJDL",
    "EWMSSUBM",
    "EWMSSTATUS",
    "EWMSNOMATCH",
    "dErrorCode",
    "dStrError",
    "strerror",
    "cmpError",
]

# 10xx: generic
ETYPE = 1000
EIMPERR = 1001
ENOMETH = 1002
ECONF = 1003
EVALUE = 1004
EEEXCEPTION = 1005

# 11xx: core
EDISET = 1110
ENOAUTH = 1111
EDB = 1130
EMQCONN = 1142
# Ours: RPC over RabbitMQ specifics.
EMQNOQUEUE = 1143
EMQNOWORKER = 1144
EMQDECODE = 1145
EMQENCODE = 1146
EMQDEADLETTER = 1147

# 14xx: configuration
ESECTION = 1400

# 15xx: WMS
EWMSUKN = 1500
EWMSJDL = 1501
EWMSSUBM = 1503
EWMSSTATUS = 1505
EWMSNOMATCH = 1510

#: Code -> symbolic name, e.g. ``dErrorCode[1111] == "ENOAUTH"``.
dErrorCode: dict[int, str] = {
    ETYPE: "ETYPE",
    EIMPERR: "EIMPERR",
    ENOMETH: "ENOMETH",
    ECONF: "ECONF",
    EVALUE: "EVALUE",
    EEEXCEPTION: "EEEXCEPTION",
    EDISET: "EDISET",
    ENOAUTH: "ENOAUTH",
    EDB: "EDB",
    EMQCONN: "EMQCONN",
    EMQNOQUEUE: "EMQNOQUEUE",
    EMQNOWORKER: "EMQNOWORKER",
    EMQDECODE: "EMQDECODE",
    EMQENCODE: "EMQENCODE",
    EMQDEADLETTER: "EMQDEADLETTER",
    ESECTION: "ESECTION",
    EWMSUKN: "EWMSUKN",
    EWMSJDL: "EWMSJDL",
    EWMSSUBM: "EWMSSUBM",
    EWMSSTATUS: "EWMSSTATUS",
    EWMSNOMATCH: "EWMSNOMATCH",
}

#: Code -> human readable text, used as the prefix of ``S_ERROR(errno, msg)``.
dStrError: dict[int, str] = {
    ETYPE: "Object Type Error",
    EIMPERR: "Failed to import library",
    ENOMETH: "No such method or function",
    ECONF: "Configuration error",
    EVALUE: "Wrong value passed",
    EEEXCEPTION: "runtime general exception",
    EDISET: "DISET error",
    ENOAUTH: "Unauthorized query",
    EDB: "Database error",
    EMQCONN: "MQ connection failure",
    EMQNOQUEUE: "No such service queue",
    EMQNOWORKER: "No worker consumed the request",
    EMQDECODE: "Malformed RPC message",
    EMQENCODE: "Cannot encode RPC message",
    EMQDEADLETTER: "Request dead-lettered",
    ESECTION: "Section is not found",
    EWMSUKN: "Unknown WMS error",
    EWMSJDL: "Invalid job description",
    EWMSSUBM: "Job submission error",
    EWMSSTATUS: "Job status error",
    EWMSNOMATCH: "No match found",
}


def strerror(code: int) -> str:
    """Return the text for an error code: DIRAC's table first, then the OS's.

    Mirrors DIRAC so that ``S_ERROR(code, msg)`` messages read the same as
    DIRAC's; codes unknown to both give ``"Unknown error <code>"``.
    """
    try:
        return dStrError[code]
    except (KeyError, TypeError):
        pass
    try:
        return os.strerror(code)
    except (ValueError, OverflowError, TypeError):
        return f"Unknown error {code}"


def cmpError(inErr: Any, candidate: int) -> bool:
    """Tell whether an error is the code ``candidate``.

    ``inErr`` may be an int code, an ``S_ERROR`` dict (its ``Errno`` is
    compared; a dict without ``Errno``, such as an ``S_OK``, never matches) or,
    for old-style callers, a message string (matches ``strerror(candidate)``
    alone or as the prefix ``S_ERROR(candidate, ...)`` produces).
    Raises ``TypeError`` for anything else, as silently answering ``False``
    would hide a caller bug.
    """
    if isinstance(inErr, dict):
        return bool(inErr.get("Errno", 0) == candidate)
    if isinstance(inErr, int):
        return inErr == candidate
    if isinstance(inErr, str):
        text = strerror(candidate)
        return inErr == text or inErr.startswith(f"{text} ( {candidate} :")
    raise TypeError(
        f"cmpError expects an int, an S_ERROR dict or a str, not {type(inErr).__name__}"
    )
