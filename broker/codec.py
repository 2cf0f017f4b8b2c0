"""The msgpack codec used for every request and reply body.

Why msgpack with extensions: DIRAC's own encoder keeps tuples, integer dict keys
(job IDs) and datetimes; JSON loses all three.  Plain msgpack keeps int keys and
bytes; the ext types below add what it lacks, so a value comes back as the type
it went in as.

    ===============  =========================================================
    Python value     On the wire
    ===============  =========================================================
    None/bool/int    msgpack nil/bool/int (ints up to 64 bits)
    float            msgpack float 64
    str / bytes      msgpack str (UTF-8) / bin
    list / dict      msgpack array / map (any key type that is itself encodable)
    tuple            ext 1: the packed list of its items
    datetime         ext 2: ISO 8601 text (microseconds, UTC offset, or naive)
    date             ext 3: ISO 8601 text
    set / frozenset  ext 4 / ext 5: the packed list of its items
    ===============  =========================================================

Subclasses are sent as their base type (an ``IntEnum`` as int, an ``OrderedDict``
as dict); anything else raises :class:`EncodeError`.  A ``datetime`` with a
``zoneinfo`` zone comes back with the same UTC offset as a fixed-offset zone.
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any

import msgpack

__all__ = ["CONTENT_TYPE", "DecodeError", "EncodeError", "packb", "unpackb"]

#: The AMQP ``content_type`` of every body we publish.
CONTENT_TYPE = "application/x-msgpack"

EXT_TUPLE = 1
EXT_DATETIME = 2
EXT_DATE = 3
EXT_SET = 4
EXT_FROZENSET = 5

#: Largest body the decoder accepts (bytes); RabbitMQ's own default limit is 128 MiB.
MAX_BODY = 128 * 1024 * 1024
#: Deepest nesting of ext types (tuples in tuples...).  Each level re-enters msgpack's
#: C decoder, so without a bound a 1 KB message of nested tuples overflows the C stack.
MAX_EXT_DEPTH = 32

_depth = threading.local()


class EncodeError(TypeError):
    """A value cannot be put on the wire (unsupported type or too large)."""


class DecodeError(ValueError):
    """Bytes that are not a valid message of ours (bad msgpack, unknown ext type)."""


def _default(obj: Any) -> Any:
    # strict_types=True sends every non-exact type here, so tuples (and subclasses
    # of the basic types) can be told apart from lists.
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, packb(list(obj)))
    if isinstance(obj, _dt.datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, _dt.date):
        return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, frozenset):
        return msgpack.ExtType(EXT_FROZENSET, packb(list(obj)))
    if isinstance(obj, set):
        return msgpack.ExtType(EXT_SET, packb(list(obj)))
    for base in (bool, int, float, str, bytes, dict, list):
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise EncodeError(f"cannot encode object of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    level = getattr(_depth, "level", 0)
    if level >= MAX_EXT_DEPTH:
        raise DecodeError(f"tuples/sets nested deeper than {MAX_EXT_DEPTH} levels")
    _depth.level = level + 1
    try:
        return _decode_ext(code, data)
    finally:
        _depth.level = level


def _decode_ext(code: int, data: bytes) -> Any:
    if code == EXT_TUPLE:
        return tuple(unpackb(data))
    if code == EXT_DATETIME:
        return _dt.datetime.fromisoformat(data.decode())
    if code == EXT_DATE:
        return _dt.date.fromisoformat(data.decode())
    if code == EXT_SET:
        return set(unpackb(data))
    if code == EXT_FROZENSET:
        return frozenset(unpackb(data))
    raise DecodeError(f"unknown msgpack extension type {code}")


def packb(obj: Any) -> bytes:
    """Encode ``obj`` to msgpack bytes; raise :class:`EncodeError` if it cannot travel."""
    try:
        return msgpack.packb(obj, use_bin_type=True, strict_types=True, default=_default)
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(str(exc)) from exc


def unpackb(data: bytes) -> Any:
    """Decode msgpack bytes produced by :func:`packb`; raise :class:`DecodeError` otherwise."""
    if len(data) > MAX_BODY:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {MAX_BODY}")
    try:
        # unpackb bounds every container and string by len(data), so a forged
        # length cannot make it allocate more than the message itself.
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises several types; callers need one
        raise DecodeError(f"{type(exc).__name__}: {exc}") from exc
