"""Tables in broker.codec: lists (and dicts) of same-keyed dicts sent column by column.

What a caller must see: exactly the value that went in (types, key order, naive vs
aware datetimes, microseconds), whether or not it travelled as a table.  What the
decoder must do with a forged table: return a value or raise DecodeError.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import OrderedDict
from zoneinfo import ZoneInfo

import msgpack
import pytest
from diracmq.broker import codec
from diracmq_testing import assert_same
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAIVE = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
UTC = dt.datetime(2024, 2, 29, 23, 59, 58, 654321, tzinfo=dt.UTC)
OFFSET = dt.datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
NEGATIVE = dt.datetime(1999, 12, 31, 0, 0, 0, 999999, tzinfo=dt.timezone(-dt.timedelta(hours=8)))


def job(i: int, **extra) -> dict:
    """A job record shaped as DIRAC's JobDB returns it."""
    submitted = dt.datetime(2024, 5, 1, 12, 0, 0, 1000 * i)
    return {"JobID": 1000 + i, "Status": ("Running", "Done")[i % 2], "Site": "LCG.CERN.cern",
            "SubmissionTime": submitted, "LastUpdateTime": submitted + dt.timedelta(minutes=i),
            "EndExecTime": submitted if i % 2 else None, "RescheduleTime": None,
            "UserPriority": 1, "VerifiedFlag": True, "CPUTime": 1.5 * i, **extra}


def round_trip(value):
    data = codec.packb(value)
    got = codec.unpackb(data)
    assert_same(got, value)
    return data


def raw(data: bytes):
    """The message as plain msgpack sees it: our ext types left as ExtType."""
    return msgpack.unpackb(data, strict_map_key=False)


def forged_table(payload, code=codec.EXT_TABLE) -> bytes:
    return msgpack.packb({"OK": True, "Value": msgpack.ExtType(code, msgpack.packb(payload))})


# ------------------------------------------------------------------ round trips

def test_job_records_travel_as_one_table_and_come_back_the_same():
    reply = {"OK": True, "Value": [job(i) for i in range(100)]}
    data = round_trip(reply)
    value = raw(data)["Value"]
    assert isinstance(value, msgpack.ExtType) and value.code == codec.EXT_TABLE
    keys, columns, kinds = raw(value.data)
    assert keys == list(job(0)) and len(columns) == len(keys)
    # the three datetime columns (None included) are converted in bulk
    assert set(kinds.values()) == {codec.COLUMN_DATETIME_FIELDS}
    assert {keys[i] for i in kinds} == {"SubmissionTime", "LastUpdateTime", "EndExecTime"}
    assert len(data) < len(msgpack.packb(reply, default=str)) / 2


def test_the_callers_value_is_not_changed():
    rows = [job(i, Tags=["a", "b"]) for i in range(10)]
    reply = {"OK": True, "Value": rows}
    before = copy.deepcopy(reply)
    codec.packb(reply)
    assert reply == before and reply["Value"] is rows and type(rows[0]["Tags"]) is list


@pytest.mark.parametrize("column", [
    [NAIVE, NAIVE.replace(microsecond=0), dt.datetime(1, 1, 1), dt.datetime.max],
    [UTC, OFFSET, NEGATIVE, UTC],
    [NAIVE, UTC, OFFSET, NAIVE],  # naive and aware in one column
    [None, NAIVE, None, NAIVE, None],  # None first, and in between
    [UTC, None, None, OFFSET],
    [None, None, None, None],
    [dt.datetime(2024, 7, 1, 12, 30, 15, 250000, tzinfo=ZoneInfo("Europe/Zurich"))] * 4,
], ids=["naive", "aware", "naive-and-aware", "naive-and-none", "aware-and-none", "all-none",
        "zoneinfo"])
def test_datetime_columns_keep_microseconds_time_zones_and_naivety(column):
    rows = [{"i": i, "t": t} for i, t in enumerate(column)]
    got = codec.unpackb(round_trip(rows))
    for g, want in zip(got, column, strict=True):
        assert (g["t"] is None) == (want is None)
        if want is not None:
            assert (g["t"].tzinfo is None) == (want.tzinfo is None)
            assert g["t"].utcoffset() == want.utcoffset()


def test_a_zoneinfo_datetime_comes_back_with_its_offset_as_a_fixed_zone():
    when = dt.datetime(2024, 7, 1, 12, 30, 15, 250000, tzinfo=ZoneInfo("Europe/Zurich"))
    got = codec.unpackb(codec.packb([{"t": when}] * 5))
    assert got[0]["t"] == when and got[0]["t"].utcoffset() == dt.timedelta(hours=2)


def test_values_of_every_type_survive_inside_a_table():
    rows = [{"tuple": (i, "x", None), "set": {i}, "frozenset": frozenset({"a"}), "bytes": b"\0",
             "date": dt.date(2024, 2, 29), "int keys": {i: "v", -1: (1,)}, "list": [1, [2]],
             "nested table": [{"a": j} for j in range(5)], "float": float(i), "big": 2**64 - 1}
            for i in range(6)]
    round_trip({"OK": True, "Value": rows})


def test_a_dict_of_same_keyed_dicts_is_a_keyed_table_and_keeps_its_int_keys():
    jobs = {1000 + i: {"Status": "Done", "Site": "LCG.CERN.cern", "When": NAIVE}
            for i in range(20)}
    data = round_trip({"OK": True, "Value": jobs})
    assert raw(data)["Value"].code == codec.EXT_KEYED_TABLE


@pytest.mark.parametrize("value", [
    [{"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1, "b": 2}, {"b": 2, "a": 1}],  # key order
    [{"a": 1}, {"a": 1}, {"a": 1}, {"b": 1}],  # other keys
    [{"a": 1}, {"a": 1}, {"a": 1}, {"a": 1, "b": 2}],  # more keys
    [{"a": 1}, {"a": 1}, {"a": 1}, 5],  # not all dicts
    [{"a": 1}, {"a": 1}, {"a": 1}, OrderedDict(a=1)],  # a dict subclass
    [{}, {}, {}, {}],  # no keys
    [{"a": NAIVE}] * (codec.MIN_TABLE_ROWS - 1),  # too few rows
], ids=["key-order", "other-keys", "more-keys", "not-all-dicts", "subclass", "empty", "few"])
def test_lists_that_are_not_tables_travel_as_plain_maps_and_come_back_the_same(value):
    data = codec.packb(value)
    assert isinstance(raw(data), list)  # not an ExtType
    got = codec.unpackb(data)
    assert got == value and [list(d) if isinstance(d, dict) else d for d in got] == \
        [list(d) if isinstance(d, dict) else d for d in value]
    assert all(type(d) is dict for d in got if isinstance(d, dict))


def test_an_ordered_dict_row_comes_back_as_a_dict_in_its_own_order():
    row = OrderedDict(a=1, b=2)
    row.move_to_end("a")
    got = codec.unpackb(codec.packb([dict(b=2, a=1)] * 4 + [row]))
    assert list(got[-1]) == ["b", "a"] and type(got[-1]) is dict


def test_wide_tables_are_rebuilt_too():
    for width in (1, 63, 64, 65, 200):
        rows = [{f"k{j}": i * j for j in range(width)} for i in range(5)]
        assert raw(codec.packb(rows)).code == codec.EXT_TABLE
        round_trip(rows)


def test_tables_are_found_in_request_arguments_and_nested_values():
    rows = [job(i) for i in range(5)]
    request = {"v": 1, "method": "setJobs", "args": [rows, 3]}
    assert raw(codec.packb(request))["args"][0].code == codec.EXT_TABLE
    round_trip(request)
    nested = {"OK": True, "Value": {"Records": rows, "TotalRecords": 5}}
    assert raw(codec.packb(nested))["Value"]["Records"].code == codec.EXT_TABLE
    round_trip(nested)


def test_tables_are_not_searched_deep_down_or_in_wide_containers():
    rows = [job(i) for i in range(5)]
    deep = {"a": {"b": {"c": {"d": rows}}}}
    assert type(raw(codec.packb(deep))["a"]["b"]["c"]["d"]) is list
    round_trip(deep)
    wide = {"OK": True, "Value": [0] * codec.TABLE_SEARCH_WIDTH + [rows]}
    assert type(raw(codec.packb(wide))["Value"][-1]) is list
    round_trip(wide)


def test_unencodable_values_in_a_table_raise_encode_error():
    with pytest.raises(codec.EncodeError, match="cannot encode object of type object"):
        codec.packb([{"a": object()}] * 5)
    with pytest.raises(codec.EncodeError):
        codec.packb([{"a": 2**70}] * 5)


def test_messages_of_the_previous_encoder_decode_the_same():
    # Before tables: plain maps, every datetime an ext 2 of ISO text.
    def old_default(obj):
        return msgpack.ExtType(codec.EXT_DATETIME, obj.isoformat().encode())

    reply = {"OK": True, "Value": [job(i) for i in range(10)]}
    old = msgpack.packb(reply, use_bin_type=True, default=old_default)
    assert_same(codec.unpackb(old), reply)


aware = st.datetimes(timezones=st.timezones())
# A strategy per column, so that whole columns of datetimes (or None) are common.
column_kinds = [st.datetimes(), st.none() | st.datetimes(), aware, st.none() | aware,
                st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5)
                | st.datetimes() | aware | st.tuples(st.booleans())]
rows_strategy = st.lists(st.sampled_from(column_kinds), min_size=1, max_size=6).flatmap(
    lambda kinds: st.lists(st.fixed_dictionaries({f"k{j}": kind for j, kind in enumerate(kinds)}),
                           max_size=12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows_strategy)
def test_any_list_of_same_keyed_dicts_round_trips(rows):
    got = codec.unpackb(codec.packb({"OK": True, "Value": rows}))["Value"]
    assert len(got) == len(rows)
    for g, w in zip(got, rows, strict=True):
        assert list(g) == list(w)
        for key, value in w.items():
            assert type(g[key]) is type(value)
            if isinstance(value, dt.datetime):
                # ==, not: a zoneinfo datetime in a fold/gap never equals another zone's
                assert (g[key].tzinfo is None) == (value.tzinfo is None)
                assert g[key].replace(tzinfo=None) == value.replace(tzinfo=None)
                assert g[key].utcoffset() == value.utcoffset()
            else:
                assert g[key] == value


# ------------------------------------------------------------------ forged tables

STATE = dt.datetime(2024, 2, 29, 1, 2, 3, 4).__reduce__()[1][0]  # the 10 bytes of a datetime


@pytest.mark.parametrize("payload", [
    "not a list",
    [["a"], [[1, 2]]],  # two items, not three
    [[], [], {}],  # no keys
    [["a", "b"], [[1, 2]], {}],  # fewer columns than keys
    [["a"], [[1, 2], [3, 4]], {}],  # more columns than keys
    [["a", "b"], [[1, 2], [3]], {}],  # columns of different lengths
    [["a"], ["ab"], {}],  # a column that is not a list
    [[["unhashable"]], [[1]], {}],  # a key that cannot be a dict key
    [["a"], [[1]], {0: 99}],  # unknown column kind
    [["a"], [[1]], {5: codec.COLUMN_DATETIME_FIELDS}],  # kind of a column that is not there
    [["a"], [[[], [STATE]]], {"0": codec.COLUMN_DATETIME_FIELDS}],  # column index not an int
    [["a"], [[[], [STATE[:9]]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # short fields
    [["a"], [[[], [b"\x07\xe8\x0d" + STATE[3:]]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # month 13
    [["a"], [[[], [STATE[:3] + b"\x1e" + STATE[4:]]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # 30 Feb
    [["a"], [[[], [STATE[:4] + b"\x18" + STATE[5:]]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # 24 h
    [["a"], [[[], [STATE[:7] + b"\xff\xff\xff"]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # µs
    [["a"], [[[], [b"\x00\x00" + STATE[2:]]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # year 0
    [["a"], [[[], [12345]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # not bytes
    [["a"], [[[], ["2024-13-01"]]], {0: codec.COLUMN_DATETIME_ISO}],  # bad ISO text
    [["a"], [[[0, 0], [STATE]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # None position repeated
    [["a"], [[[5], [STATE]]], {0: codec.COLUMN_DATETIME_FIELDS}],  # None position too far
    [["a"], [[STATE]], {0: codec.COLUMN_DATETIME_FIELDS}],  # not [positions, values]
])
def test_forged_tables_raise_decode_error(payload):
    with pytest.raises(codec.DecodeError):
        codec.unpackb(forged_table(payload))


@pytest.mark.parametrize("payload", [
    "not a list",
    [[1, 2], ["a"], [[1]], {}],  # more row keys than rows
    [[[1]], ["a"], [[1]], {}],  # a row key that cannot be a dict key
    [1, ["a"], [[1]], {}],
])
def test_forged_keyed_tables_raise_decode_error(payload):
    with pytest.raises(codec.DecodeError):
        codec.unpackb(forged_table(payload, codec.EXT_KEYED_TABLE))


def test_tables_nested_in_tables_are_bounded_by_max_ext_depth():
    data = msgpack.packb(1)
    for _ in range(codec.MAX_EXT_DEPTH + 5):
        data = msgpack.packb(msgpack.ExtType(codec.EXT_TABLE, msgpack.packb(
            [["a"], [[msgpack.ExtType(codec.EXT_TABLE, data)]], {}])))
    with pytest.raises(codec.DecodeError):
        codec.unpackb(data)


def test_a_well_formed_forged_table_decodes_to_plain_dicts():
    got = codec.unpackb(forged_table([["a", 2], [[1, 2], [[], ["x"]]], {}]))
    assert got == {"OK": True, "Value": [{"a": 1, 2: []}, {"a": 2, 2: ["x"]}]}
    got = codec.unpackb(forged_table([["t"], [[[1], [STATE]]], {0: 1}]))
    assert got["Value"] == [{"t": dt.datetime(2024, 2, 29, 1, 2, 3, 4)}, {"t": None}]
