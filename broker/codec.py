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
    list of dicts    ext 6 (a "table", see below), when every dict has the same keys
    dict of dicts    ext 7 (a keyed table), when every value has the same keys
    ===============  =========================================================

Tables: a DIRAC reply is typically a list of job records, dicts of ~20 fields of
which several are datetimes.  As plain msgpack maps every key is sent again for
every record, and the decoder makes a new ``str`` for each; every datetime costs a
Python call each way.  That made the codec 2.5x slower than pickle on such a reply
(bench/codec_bench.py).  So :func:`packb` looks for lists (and dicts) of at least
:data:`MIN_TABLE_ROWS` dicts with the same keys in the same order, and sends them
column by column: the keys once, each column as one array, a column of datetimes
converted in bulk (naive ones as the 10 bytes of their fields).  :func:`unpackb`
rebuilds the same dicts, so callers see no difference.  Only the value and the
small containers near its top are searched (:data:`TABLE_SEARCH_DEPTH`,
:data:`TABLE_SEARCH_WIDTH`), which costs next to nothing on other values.  The
wire format is in docs/protocol.md, section 5.

Subclasses are sent as their base type (an ``IntEnum`` as int, an ``OrderedDict``
as dict); anything else raises :class:`EncodeError`.  A ``datetime`` with a
``zoneinfo`` zone comes back with the same UTC offset as a fixed-offset zone.
"""

from __future__ import annotations

import datetime as _dt
import functools
import threading
from collections.abc import Callable, Iterable
from itertools import compress, count, repeat
from operator import add, attrgetter, itemgetter, not_
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
EXT_TABLE = 6
EXT_KEYED_TABLE = 7

#: How a column of a table is sent (the third item of a table's payload says which).
COLUMN_DATETIME_FIELDS = 1  # naive datetimes: a bin of 10 bytes per value (see protocol.md)
COLUMN_DATETIME_ISO = 2  # datetimes with a time zone: isoformat() text each

#: Fewest dicts sent as a table: below that the keys saved do not pay for the work.
MIN_TABLE_ROWS = 4
#: Tables are searched for in the value and in the lists and dicts in it down to
#: this depth (the S_OK envelope is depth 0, its ``Value`` depth 1, a request's
#: arguments depth 2)...
TABLE_SEARCH_DEPTH = 3
#: ...but not inside a list or dict of more than this many items: that is data, not
#: an envelope, and looking at each of its items would cost more than a table saves.
TABLE_SEARCH_WIDTH = 32

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


_datetime = _dt.datetime
#: ``datetime(state)``: how pickle rebuilds a datetime from its packed fields.  The
#: ignore: typeshed lists only ``datetime(year, month, ...)``, not this form.
_datetime_from_state: Callable[[bytes], _dt.datetime] = _dt.datetime  # type: ignore[assignment]
#: Subclasses of these encode as their base (a str enum as its str...).
_PLAIN_TYPES: tuple[type[Any], ...] = (bool, int, float, str, bytes, dict, list)
_TZINFO = attrgetter("tzinfo")
_first = itemgetter(0)
_second = itemgetter(1)
_ZERO = _dt.timedelta(0)
_NoneType = type(None)
_DICTS = {dict}
_DATETIMES = {_datetime}
_DATETIMES_OR_NONE = {_datetime, _NoneType}


def _default(obj: Any) -> Any:
    # strict_types=True sends every non-exact type here, so tuples (and subclasses
    # of the basic types) can be told apart from lists.
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, _pack(list(obj)))
    if isinstance(obj, _dt.datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, _dt.date):
        return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, frozenset):
        return msgpack.ExtType(EXT_FROZENSET, _pack(list(obj)))
    if isinstance(obj, set):
        return msgpack.ExtType(EXT_SET, _pack(list(obj)))
    for base in _PLAIN_TYPES:
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise EncodeError(f"cannot encode object of type {type(obj).__name__}")


def _find_tables(obj: Any, depth: int) -> Any:
    """``obj``, or a shallow copy of it where lists/dicts of same-keyed dicts are tables.

    Searches ``obj`` and the lists and dicts in it down to :data:`TABLE_SEARCH_DEPTH`,
    but not in a list or dict wider than :data:`TABLE_SEARCH_WIDTH` (unless it is
    itself a table).  Never changes ``obj``: the caller's value may be shared.
    """
    kind = type(obj)
    if kind is list:
        if len(obj) >= MIN_TABLE_ROWS and type(obj[0]) is dict:
            payload = _table_payload(obj)
            if payload is not None:
                return msgpack.ExtType(EXT_TABLE, _pack(payload))
        items = enumerate(obj)
    elif kind is dict:
        if len(obj) >= MIN_TABLE_ROWS and type(next(iter(obj.values()))) is dict:
            payload = _table_payload(list(obj.values()))
            if payload is not None:
                return msgpack.ExtType(EXT_KEYED_TABLE, _pack([list(obj), *payload]))
        items = obj.items()
    else:
        return obj
    if depth >= TABLE_SEARCH_DEPTH or len(obj) > TABLE_SEARCH_WIDTH:
        return obj
    copy = None
    for key, value in items:
        kind = type(value)
        if kind is list or kind is dict:
            found = _find_tables(value, depth + 1)
            if found is not value:
                if copy is None:
                    copy = obj.copy()  # same order; only the changed items differ
                copy[key] = found
    return obj if copy is None else copy


def _table_payload(rows: list[Any]) -> list[Any] | None:
    """``[keys, columns, column kinds]`` for dicts with the same keys, else ``None``.

    Bulk operations (map, zip) rather than a Python loop per row or per value:
    this is where the time goes.
    """
    # Exact dicts (a subclass such as OrderedDict may iterate in another order than
    # dict.values() below), with the same keys in the same order: dict order survives.
    if set(map(type, rows)) != _DICTS:
        return None
    # list(dict) is the cheapest copy of a dict's keys (a third less than tuple(dict)).
    keys = list(rows[0])
    if not keys or not all(map(keys.__eq__, map(list, rows))):
        return None
    columns = list(map(list, zip(*map(dict.values, rows), strict=True)))
    kinds = {}
    for i, column in enumerate(columns):
        # One datetime per value would be one Python call each way (ext 2); a whole
        # column is converted by a few bulk operations instead.
        first = type(column[0])
        if first is _datetime or first is _NoneType:
            encoded = _encode_datetimes(column)
            if encoded is not None:
                kinds[i], columns[i] = encoded
    return [keys, columns, kinds]


def _encode_datetimes(column: list[Any]) -> tuple[int, list[Any]] | None:
    """``(kind, [positions of None, values])`` for a column of datetimes (or None), else None."""
    types = set(map(type, column))
    if types != _DATETIMES and types != _DATETIMES_OR_NONE:
        return None
    nones = []
    if _NoneType in types:  # e.g. EndExecTime of jobs not finished yet
        nones = list(compress(count(), map(not_, column)))  # a datetime is never false
        column = list(filter(None, column))
    if list(map(_TZINFO, column)).count(None) == len(column):  # all naive
        # The 10-byte fields that datetime's own __reduce__ (pickle) makes: a quarter
        # of the cost of isoformat(), and cheaper to decode than any other form.
        return COLUMN_DATETIME_FIELDS, [nones, list(map(_first, map(_second, map(
            _datetime.__reduce__, column))))]
    return COLUMN_DATETIME_ISO, [nones, list(map(_datetime.isoformat, column))]


def _decode_datetimes(kind: Any, payload: Any) -> list[Any]:
    """The column that :func:`_encode_datetimes` encoded as ``kind``, ``payload``."""
    if type(payload) is not list or len(payload) != 2:
        raise DecodeError("malformed table: a datetime column is [positions of None, values]")
    nones, encoded = payload
    if kind == COLUMN_DATETIME_FIELDS:
        # datetime(fields) is how pickle rebuilds a datetime; it checks the length
        # and the month only.  Adding zero normalizes the other fields (raises if
        # the year is out of range): a value that changes had a forged field.
        raw = list(map(_datetime_from_state, encoded))
        values = list(map(add, raw, repeat(_ZERO)))
        if values != raw:
            raise DecodeError("malformed table: a datetime field is out of range")
    elif kind == COLUMN_DATETIME_ISO:
        values = list(map(_datetime.fromisoformat, encoded))
    else:
        raise DecodeError(f"malformed table: unknown column kind {kind!r}")
    if not nones:
        return values
    # A mask rather than list.insert per None: linear however many Nones a forged
    # message holds.  Repeated positions leave more slots than values: StopIteration.
    present = [True] * (len(values) + len(nones))
    for position in nones:
        present[position] = False
    remaining = iter(values)
    return [next(remaining) if here else None for here in present]


def _decode_table(payload: Any) -> list[dict[Any, Any]]:
    """The dicts of a table payload (see :func:`_table_payload`)."""
    if type(payload) is not list or len(payload) != 3:
        raise DecodeError("malformed table: expected [keys, columns, kinds]")
    keys, columns, kinds = payload
    if (type(keys) is not list or not keys or type(columns) is not list
            or len(columns) != len(keys) or type(kinds) is not dict
            or any(type(column) is not list for column in columns)):
        raise DecodeError("malformed table: keys and columns do not match")
    for i, kind in kinds.items():
        columns[i] = _decode_datetimes(kind, columns[i])
    if len(set(map(len, columns))) != 1:
        raise DecodeError("malformed table: columns of different lengths")
    _spend(len(columns[0]) * (len(keys) + 1))  # the dicts about to be built
    rows = zip(*columns, strict=True)
    if len(keys) > _MAX_BUILT_COLUMNS:
        return list(map(dict, map(zip, repeat(keys), rows)))
    return _dict_builder(len(keys))(keys, rows)


#: Widest table whose dicts are made by a function of :func:`_dict_builder`.
_MAX_BUILT_COLUMNS = 64


#: ``build(keys, rows) -> [dict, ...]``, as :func:`_dict_builder` makes it.
_Builder = Callable[[list[Any], Iterable[tuple[Any, ...]]], list[dict[Any, Any]]]


@functools.lru_cache(maxsize=_MAX_BUILT_COLUMNS)
def _dict_builder(n: int) -> _Builder:
    """A function ``(keys, rows) -> [dict, ...]`` for ``n`` keys, made once per ``n``.

    A dict display ``{k0: v0, k1: v1, ...}`` makes the dict in one step, presized
    (BUILD_MAP), where ``dict(zip(keys, row))`` makes a pair per value and grows the
    dict as it goes: a third less time, and rebuilding the dicts is the largest part
    of decoding a table.  The generated source depends on ``n`` only, never on the
    data (as namedtuple and dataclasses do).
    """
    keys = ", ".join(f"k{i}" for i in range(n))
    values = ", ".join(f"v{i}" for i in range(n))
    items = ", ".join(f"k{i}: v{i}" for i in range(n))
    source = (f"def build(keys, rows):\n"
              f"    {keys}, = keys\n"
              f"    return [{{{items}}} for {values}, in rows]\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<codec dict builder {n}>", "exec"), namespace)
    build: _Builder = namespace["build"]
    return build


def _ext_hook(code: int, data: bytes) -> Any:
    # Datetimes and dates hold no nested message: decoded without the depth count
    # below, which would cost more than the decoding itself.
    if code == EXT_DATETIME:
        return _datetime.fromisoformat(data.decode())
    if code == EXT_DATE:
        return _dt.date.fromisoformat(data.decode())
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
    if code == EXT_SET:
        return set(unpackb(data))
    if code == EXT_FROZENSET:
        return frozenset(unpackb(data))
    if code == EXT_TABLE:
        return _decode_table(unpackb(data))
    if code == EXT_KEYED_TABLE:
        payload = unpackb(data)
        if type(payload) is not list or len(payload) != 4 or type(payload[0]) is not list:
            raise DecodeError("malformed keyed table: expected [row keys, keys, columns, kinds]")
        rows = _decode_table(payload[1:])
        if len(rows) != len(payload[0]):
            raise DecodeError("malformed keyed table: as many row keys as rows expected")
        return dict(zip(payload[0], rows, strict=True))
    raise DecodeError(f"unknown msgpack extension type {code}")


def _pack(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True, strict_types=True, default=_default)
    return packed


def packb(obj: Any) -> bytes:
    """Encode ``obj`` to msgpack bytes; raise :class:`EncodeError` if it cannot travel."""
    try:
        return _pack(_find_tables(obj, 0))
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(str(exc)) from exc


#: Bodies up to this size are decoded without counting their containers: even one
#: made of nothing but empty maps (about 70 bytes of Python objects per byte) stays
#: within a few MB, and small bodies are the hot path.
COUNT_CONTAINERS_ABOVE = 64 * 1024

_budget = threading.local()


def _spend(items: int) -> None:
    """Charge ``items`` decoded items to the current decode's budget (if it has one)."""
    left = getattr(_budget, "left", None)
    if left is None:
        return
    left -= items
    _budget.left = left
    if left < 0:
        raise DecodeError(f"the message decodes to more than {_budget.limit} items "
                          f"(container elements and table cells)")


def _count_list(items: list[Any]) -> list[Any]:
    _spend(len(items) + 1)
    return items


def _count_map(items: dict[Any, Any]) -> dict[Any, Any]:
    _spend(len(items) + 1)
    return items


def unpackb(data: bytes, max_items: int | None = None) -> Any:
    """Decode msgpack bytes produced by :func:`packb`; raise :class:`DecodeError` otherwise.

    With ``max_items``, raise :class:`DecodeError` as soon as the decoded value holds
    more than that many items (elements of lists and maps, and table cells): what a
    hostile message can cost to decode is then bounded however it is built (a table of
    one-byte rows would otherwise expand a 5 MB body to over 1 GiB of dicts).
    """
    if len(data) > MAX_BODY:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {MAX_BODY}")
    outer = max_items is not None and getattr(_budget, "left", None) is None
    if outer:
        _budget.left = _budget.limit = max_items
        _budget.count = len(data) > COUNT_CONTAINERS_ABOVE
    try:
        # unpackb bounds every container and string by len(data), so a forged
        # length cannot make it allocate more than the message itself.
        if getattr(_budget, "count", False) and getattr(_budget, "left", None) is not None:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook,
                                   list_hook=_count_list, object_hook=_count_map)
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises several types; callers need one
        raise DecodeError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if outer:
            _budget.left = None
            _budget.count = False
