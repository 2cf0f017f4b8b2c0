"""Issue 11's fuzzer: random, *valid* AMQP basic properties and header tables through
the broker to a worker, which must keep serving.

Every field type RabbitMQ forwards and pika reads (bool, signed 8/16/32/64-bit ints,
float, double, decimal, long string, byte array, timestamp, void, nested arrays and
tables) in ``headers``, at any depth, under random names and under the names the
worker reads (``x-deadline``, ``x-death``, ``x-dirac-group``); odd ``reply_to``,
``correlation_id``, ``message_id`` and the other properties.  The content header is
written by hand (:class:`FuzzProperties`): pika's own encoder knows only some of
these types.  After each example (1-4 such requests) a normal call must be answered.
"""

from __future__ import annotations

import struct
import uuid

import pika
import pika.spec
import pytest
from diracmq.client.base import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hostile.hostilelib import assert_alive, field_table, pack, settings_for, shortstr

pytestmark = pytest.mark.timeout(600)

EXAMPLES = 150
#: Latest timestamp pika can turn into a datetime (9999-12-31T23:59:59Z).
MAX_TIMESTAMP = 253402300799


def _longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


_names = st.text(max_size=24).filter(lambda s: len(s.encode()) <= 255)
_leaves = st.one_of(
    st.booleans().map(lambda v: b"t" + struct.pack(">B", v)),
    st.integers(-2**7, 2**7 - 1).map(lambda v: b"b" + struct.pack(">b", v)),
    st.integers(-2**15, 2**15 - 1).map(lambda v: b"s" + struct.pack(">h", v)),
    st.integers(-2**31, 2**31 - 1).map(lambda v: b"I" + struct.pack(">i", v)),
    st.integers(-2**63, 2**63 - 1).map(lambda v: b"l" + struct.pack(">q", v)),
    # RabbitMQ closes the publisher's connection on a NaN or an infinity (541): not
    # something it forwards.
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(
        lambda v: b"f" + struct.pack(">f", v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: b"d" + struct.pack(">d", v)),
    st.tuples(st.integers(0, 255), st.integers(-2**31, 2**31 - 1)).map(
        lambda v: b"D" + struct.pack(">Bi", *v)),
    st.text(max_size=300).map(lambda v: b"S" + _longstr(v.encode())),
    st.binary(max_size=300).map(lambda v: b"x" + _longstr(v)),
    st.integers(0, MAX_TIMESTAMP).map(lambda v: b"T" + struct.pack(">Q", v)),
    st.just(b"V"),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(lambda vs: b"A" + _longstr(b"".join(vs))),
        st.lists(st.tuples(_names, inner), max_size=5).map(lambda fs: b"F" + field_table(fs)),
    ),
    max_leaves=25,
)
_header_names = st.one_of(_names, st.sampled_from(
    ["x-deadline", "x-death", "x-dirac-group", "x-dirac-user", "x-first-death-reason"]))
_headers = st.lists(st.tuples(_header_names, _values), max_size=8).map(field_table)
_shortstrs = st.one_of(
    st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255),
    st.sampled_from(["", " ", "x" * 255, "\x00", "é" * 127, "../..", "amq.gen-x",
                     "dirac.reply.", "null"]),
)

#: The property name, its flag, and how its value is written.
_LAYOUT = [
    ("content_type", pika.spec.BasicProperties.FLAG_CONTENT_TYPE, shortstr),
    ("content_encoding", pika.spec.BasicProperties.FLAG_CONTENT_ENCODING, shortstr),
    ("headers", pika.spec.BasicProperties.FLAG_HEADERS, lambda raw: raw),
    ("delivery_mode", pika.spec.BasicProperties.FLAG_DELIVERY_MODE, lambda v: bytes([v])),
    ("priority", pika.spec.BasicProperties.FLAG_PRIORITY, lambda v: bytes([v])),
    ("correlation_id", pika.spec.BasicProperties.FLAG_CORRELATION_ID, shortstr),
    ("reply_to", pika.spec.BasicProperties.FLAG_REPLY_TO, shortstr),
    ("expiration", pika.spec.BasicProperties.FLAG_EXPIRATION, shortstr),
    ("message_id", pika.spec.BasicProperties.FLAG_MESSAGE_ID, shortstr),
    ("timestamp", pika.spec.BasicProperties.FLAG_TIMESTAMP, lambda v: struct.pack(">Q", v)),
    ("type", pika.spec.BasicProperties.FLAG_TYPE, shortstr),
    ("user_id", pika.spec.BasicProperties.FLAG_USER_ID, shortstr),
    ("app_id", pika.spec.BasicProperties.FLAG_APP_ID, shortstr),
    ("cluster_id", pika.spec.BasicProperties.FLAG_CLUSTER_ID, shortstr),
]


class FuzzProperties(pika.BasicProperties):
    """Basic properties written field by field (``headers`` as a raw table)."""

    def __init__(self, values: dict) -> None:
        super().__init__()
        self.values = values

    def encode(self) -> list[bytes]:
        flags, pieces = 0, []
        for name, flag, write in _LAYOUT:
            if self.values.get(name) is not None:
                flags |= flag
                pieces.append(write(self.values[name]))
        return [struct.pack(">H", flags), *pieces]


def _properties(reply_queue: str, user: str):
    optional = {
        "content_type": _shortstrs, "content_encoding": _shortstrs, "headers": _headers,
        "delivery_mode": st.sampled_from([1, 2]), "priority": st.integers(0, 255),
        "correlation_id": _shortstrs, "message_id": _shortstrs,
        "expiration": st.integers(0, 600_000).map(str),
        "timestamp": st.integers(0, 2**63 - 1), "type": _shortstrs,
        "user_id": st.just(user), "app_id": _shortstrs, "cluster_id": _shortstrs,
        # Not Direct Reply-to: the broker refuses it from a channel that does not consume
        # there (406), and a forged reply-to name is case 2's test.
        "reply_to": st.one_of(st.just(reply_queue), _shortstrs.filter(
            lambda name: not name.startswith("amq.rabbitmq.reply-to"))),
    }
    return st.fixed_dictionaries({}, optional=optional)


def test_fuzz_valid_properties_and_headers_never_stop_a_worker(hpool, vhost_url):
    """Random valid properties and header tables (all field types): after each batch the
    worker is alive and answers a normal call."""
    worker = hpool.start(threads=4)
    service = f"{worker.system}/Hostile"
    client = Client(url=service, settings=settings_for(vhost_url, rpc_timeout=5))
    conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
    channel = conn.channel()
    channel.confirm_delivery()  # a property the broker refuses fails here, not later
    reply_queue = channel.queue_declare("", exclusive=True).method.queue
    user = pika.URLParameters(vhost_url).credentials.username
    body = pack({"v": 1, "method": "echo", "args": ["fuzz"]})

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(_properties(reply_queue, user), min_size=1, max_size=4))
    def run(batch):
        for values in batch:
            channel.basic_publish("dirac.rpc", service, body, FuzzProperties(values))
        result = client.echo(uuid.uuid4().hex)
        assert_alive(worker, f"the worker died after {batch!r}")
        assert result["OK"], f"{result.get('Message')} after {batch!r}"

    try:
        run()
    finally:
        if conn.is_open:
            conn.close()
