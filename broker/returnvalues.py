"""DIRAC-compatible return values: ``S_OK`` / ``S_ERROR`` and helpers.

DIRAC functions (and every RPC) return a dict whose ``OK`` key says whether
the call worked: ``{"OK": True, "Value": ...}`` or
``{"OK": False, "Errno": int, "Message": str, "CallStack": [...]}``.
Only ``OK``/``Value`` or ``OK``/``Errno``/``Message`` (plus extra top-level
keys a handler adds) travel over the wire; ``CallStack`` stays local.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec, TypeGuard

from diracmq.broker.derrno import strerror

__all__ = [
    "DReturnType",
    "S_OK",
    "S_ERROR",
    "SErrorException",
    "returnValueOrRaise",
    "convertToReturnValue",
    "isReturnStructure",
    "returnSingleResult",
]

#: The type of an ``S_OK``/``S_ERROR`` dict.
DReturnType = dict[str, Any]

#: How many caller frames ``S_ERROR`` records in ``CallStack``.
_CALLSTACK_FRAMES = 5

_P = ParamSpec("_P")


def S_OK(value: Any = None) -> DReturnType:
    """Wrap a successful result: ``{"OK": True, "Value": value}``."""
    return {"OK": True, "Value": value}


def _callStack(depth: int) -> list[str]:
    """Return a few formatted frames of the stack, starting ``depth`` frames up."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return []
    return traceback.format_stack(frame, limit=_CALLSTACK_FRAMES)


def S_ERROR(*args: Any, **kwargs: Any) -> DReturnType:
    """Build a failed result, as DIRAC does.

    Forms accepted:

    * ``S_ERROR("msg")`` -> ``Errno`` 0, ``Message`` ``"msg"``;
    * ``S_ERROR(errno, "msg")`` -> ``Errno`` set and
      ``Message == f"{strerror(errno)} ( {errno} : {msg})"`` so the text is
      the same as DIRAC's and tools that parse it keep working;
    * ``S_ERROR(errno=..., message=...)`` keywords (either may be omitted);
    * ``S_ERROR()`` -> ``Message`` ``""``.

    ``callStack=`` (a list of str) replaces the recorded ``CallStack``, which
    otherwise holds the last few caller frames (kept short on purpose: it is
    built on every error).  A non-str message is turned into ``str``.
    """
    callStack = kwargs.pop("callStack", None)
    errno = kwargs.pop("errno", None)
    message = kwargs.pop("message", None)
    if kwargs:
        raise TypeError(f"S_ERROR() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    if len(args) > 2:
        raise TypeError(f"S_ERROR() takes at most 2 positional arguments ({len(args)} given)")

    if args:
        if isinstance(args[0], int) and not isinstance(args[0], bool):
            if errno is not None:
                raise TypeError("S_ERROR() got errno both positionally and as a keyword")
            errno = args[0]
            if len(args) > 1:
                if message is not None:
                    raise TypeError("S_ERROR() got message both positionally and as a keyword")
                message = args[1]
        else:
            if len(args) > 1:
                raise TypeError("S_ERROR(errno, message): errno must be an int")
            if message is not None:
                raise TypeError("S_ERROR() got message both positionally and as a keyword")
            message = args[0]

    errno = int(errno or 0)
    message = "" if message is None else message if isinstance(message, str) else str(message)
    if errno:
        message = f"{strerror(errno)} ( {errno} : {message})"

    return {
        "OK": False,
        "Errno": errno,
        "Message": message,
        "CallStack": list(callStack) if callStack is not None else _callStack(1),
    }


def isReturnStructure(unk: Any) -> TypeGuard[DReturnType]:
    """Tell whether ``unk`` is a well-formed ``S_OK``/``S_ERROR`` dict.

    That is a dict with a bool ``OK`` and a ``Value`` when OK, a ``Message``
    when not; extra keys (``Errno``, ``CallStack``, ``JobID``...) are allowed.
    """
    if not isinstance(unk, dict) or not isinstance(unk.get("OK"), bool):
        return False
    return "Value" in unk if unk["OK"] else "Message" in unk


class SErrorException(Exception):
    """An exception carrying an ``S_ERROR``, to unwind code written with raises.

    ``.result`` is always an ``S_ERROR`` dict: a string (or anything that is
    not a return structure) is turned into ``S_ERROR(errCode, str(result))``.
    ``.errCode`` is ``errCode`` if given, else the result's ``Errno``.
    ``str(e)`` is the result's ``Message``.
    """

    def __init__(self, result: DReturnType | str, errCode: int = 0) -> None:
        if isReturnStructure(result):
            if result["OK"]:
                raise ValueError("SErrorException needs an S_ERROR, not an S_OK")
            error = result
        else:
            error = S_ERROR(errCode, result if isinstance(result, str) else str(result))
        self.result: DReturnType = error
        self.errCode: int = errCode or error.get("Errno", 0)
        super().__init__(error["Message"])

    def __str__(self) -> str:
        return str(self.result["Message"])

    def __repr__(self) -> str:
        return f"SErrorException({self.result['Message']!r}, errCode={self.errCode})"


def returnValueOrRaise(result: DReturnType, *, errorCode: int = 0) -> Any:
    """Return ``result["Value"]``, or raise ``SErrorException`` if it failed.

    Lets scripts use plain exceptions instead of checking ``OK`` every time.
    A result made by :func:`convertToReturnValue` from an exception re-raises that
    original exception (kept in its ``ExecInfo``), as DIRAC does.
    The exception's ``.result`` is ``result`` itself; ``errorCode`` becomes its
    ``.errCode`` (default: the result's ``Errno``).  Anything that is not an
    ``S_OK``/``S_ERROR`` raises ``TypeError``.
    """
    if not isReturnStructure(result):
        raise TypeError(f"Expected an S_OK/S_ERROR structure, got {result!r}")
    if not result["OK"]:
        exc_info = result.get("ExecInfo")
        if isinstance(exc_info, tuple) and len(exc_info) == 3 and isinstance(
                exc_info[1], BaseException):
            raise exc_info[1]  # convertToReturnValue kept the original exception
        raise SErrorException(result, errCode=errorCode)
    return result["Value"]


def convertToReturnValue(func: Callable[_P, Any]) -> Callable[_P, DReturnType]:
    """Decorate a raising function so that it returns ``S_OK``/``S_ERROR``.

    A return becomes ``S_OK(value)``, an ``SErrorException`` becomes its
    ``.result`` and any other ``Exception`` becomes ``S_ERROR(repr(e))``;
    this is how plain Python code is exposed to DIRAC-style callers.
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> DReturnType:
        try:
            value = func(*args, **kwargs)
        except SErrorException as e:
            return e.result
        except Exception as e:
            # As DIRAC: the exception stays in ExecInfo (returnValueOrRaise re-raises it;
            # it never travels: workers drop it with CallStack) and CallStack is its
            # traceback rather than this frame's.
            exc_info = sys.exc_info()
            return S_ERROR(repr(e), callStack=traceback.format_tb(exc_info[2])) | {
                "ExecInfo": exc_info}
        return S_OK(value)

    return wrapper


def returnSingleResult(dictRes: DReturnType) -> DReturnType:
    """Turn a bulk result about one item into that item's own result.

    ``dictRes`` is ``S_OK({"Successful": {...}, "Failed": {...}})``.  A failed
    entry wins: ``S_ERROR(its message)`` (an ``S_ERROR`` entry is returned as
    is); else a successful entry gives ``S_OK(its value)``.  An ``S_ERROR``
    bulk passes through; an empty or malformed bulk gives ``S_ERROR``.
    """
    if not isReturnStructure(dictRes):
        return S_ERROR(f"returnSingleResult expects an S_OK/S_ERROR structure, got {dictRes!r}")
    if not dictRes["OK"]:
        return dictRes
    bulk = dictRes["Value"]
    if (
        not isinstance(bulk, dict)
        or not isinstance(bulk.get("Successful", {}), dict)
        or not isinstance(bulk.get("Failed", {}), dict)
    ):
        return S_ERROR("returnSingleResult expects a Value with 'Successful' and 'Failed' dicts")
    failed = bulk.get("Failed") or {}
    if failed:
        error = next(iter(failed.values()))
        if isReturnStructure(error) and not error["OK"]:
            return error
        if isinstance(error, dict) and "Message" in error:
            return S_ERROR(error["Message"])
        return S_ERROR(error if isinstance(error, str) else str(error))
    successful = bulk.get("Successful") or {}
    if successful:
        return S_OK(next(iter(successful.values())))
    return S_ERROR("returnSingleResult: empty bulk result (no Successful nor Failed entry)")
