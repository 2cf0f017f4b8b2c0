"""Built-in ``ping``, ``whoami`` and ``echo`` on every service, and what survives the wire."""

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from diracmq.client.base import Client
from diracmq_testing import assert_same, url_user

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def worker(module_workers):
    return module_workers.start()


@pytest.fixture(scope="module", params=["queue", "direct"])
def client(request, worker, settings):
    """A client on the Dispatch service, with a named reply queue or Direct Reply-to."""
    return Client(url=f"{worker.system}/Dispatch", timeout=10,
                  settings=dataclasses.replace(settings, reply_mode=request.param))


def test_ping(client, worker):
    result = client.ping()
    assert result["OK"], result
    info = result["Value"]
    assert info["name"] == f"{worker.system}/Dispatch"
    assert info["pid"] == worker.pid
    assert isinstance(info["version"], str) and info["version"]
    assert isinstance(info["time"], dt.datetime) and info["time"].tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - info["time"]).total_seconds()) < 60
    assert isinstance(info["service uptime"], int) and info["service uptime"] >= 0
    assert isinstance(info["load"], str)
    assert isinstance(info["counters"], dict) and info["counters"].get("requests", 0) >= 1


def test_ping_on_every_service_of_the_system(worker, settings):
    for service in ("Dispatch", "Work"):
        result = Client(url=f"{worker.system}/{service}", settings=settings).ping()
        assert result["OK"] and result["Value"]["name"] == f"{worker.system}/{service}"


def test_whoami_is_the_broker_user(client, vhost_url):
    result = client.whoami()
    assert result["OK"], result
    assert result["Value"]["username"] == url_user(vhost_url)  # "guest" here
    assert set(result["Value"]) >= {"username", "group", "properties"}


def test_getRemoteCredentials_in_a_handler(client, vhost_url):
    result = client.credentials()
    assert result["OK"], result
    assert result["Value"]["username"] == url_user(vhost_url)


NAIVE = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
UTC = dt.datetime(2024, 2, 29, 23, 59, 58, 654321, tzinfo=dt.UTC)
OFFSET = dt.datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
NEGATIVE = dt.datetime(1999, 12, 31, 0, 0, 0, 999999, tzinfo=dt.timezone(-dt.timedelta(hours=8)))

VALUES = {
    "int-keys": {1: "one", 2: "two", -7: "minus seven", 2**40: "big"},
    "mixed-keys": {1: "a", "1": "b", (1, 2): "tuple key", None: "none", False: "f", 1.5: "x"},
    "tuple": (1, "a", None),
    "nested-tuples": ((1, 2), [(3,), ()], {"t": (4, (5, 6))}),
    "empty-tuple": (),
    "bytes": b"\x00\x01\xff binary",
    "empty-bytes": b"",
    "naive-datetime": NAIVE,
    "utc-datetime": UTC,
    "offset-datetime": OFFSET,
    "negative-offset-datetime": NEGATIVE,
    "date": dt.date(2024, 2, 29),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1],
    "floats": [0.0, -1.5, 1e308, 5e-324],
    "none-and-bools": [None, True, False],
    "unicode": "héllo wörld ✓ 日本 🚀",
    "empty-containers": [[], {}, "", ()],
    "job-table": {123: {"Status": "Running", "LastUpdateTime": NAIVE, "Sites": ("A", "B")},
                  456: {"Status": "Done", "LastUpdateTime": UTC, "Sites": ()}},
    "deep": [{"a": [{"b": ({"c": [1, (2, {3: b"x"})]},)}]}],
    # same-keyed records travel as column tables (ext 6 and 7): naive and aware
    # datetimes, None among them, tuples, and int keys must come back as they went
    "job-records": [{"JobID": i, "Status": ("Running", "Done")[i % 2], "Sites": ("A",) * i,
                     "LastUpdateTime": (NAIVE, UTC, None, OFFSET, NEGATIVE)[i],
                     "HeartBeatTime": None if i % 2 else NAIVE} for i in range(5)],
    "keyed-job-records": {100 + i: {"Status": "Waiting", "SubmissionTime": NAIVE,
                                    "EndExecTime": None if i else NAIVE} for i in range(6)},
}


@pytest.mark.parametrize("name", list(VALUES))
def test_echo_round_trip(client, name):
    value = VALUES[name]
    result = client.echo(value)
    assert result["OK"], result
    assert_same(result["Value"], value, name)


def test_echo_zoneinfo_datetime_keeps_its_offset(client):
    value = dt.datetime(2024, 7, 1, 12, 30, 15, 250000, tzinfo=ZoneInfo("Europe/Zurich"))
    result = client.echo(value)
    assert result["OK"], result
    assert result["Value"] == value
    assert result["Value"].utcoffset() == dt.timedelta(hours=2)


def test_echo_large_payload(client):
    value = {"blob": bytes(range(256)) * 4096, "rows": [(i, str(i)) for i in range(10_000)]}
    result = client.echo(value, timeout=20)
    assert result["OK"], result
    assert result["Value"] == value
    assert type(result["Value"]["rows"][0]) is tuple


def test_echo_needs_its_argument(client):
    assert client.echo() == {"OK": False, "Errno": 0,
                             "Message": "Function echo expects at least 1 arguments"}
