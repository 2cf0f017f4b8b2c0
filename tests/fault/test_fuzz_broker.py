"""Bad input through the broker: a worker survives hundreds of hostile messages and answers.

Random and truncated bodies, deeply nested and huge structures, headers and
properties of the wrong types, a ``reply_to`` that does not exist, none at all:
every request that can be answered gets exactly one S_OK/S_ERROR, the others are
counted (``no_reply_to``, ``foreign_reply_to``, ``expired``), and the worker keeps
serving.
"""

from __future__ import annotations

import datetime
import decimal
import random
import time
import uuid

import msgpack
import pika
import pytest
from diracmq.broker import codec, topology
from diracmq.broker.returnvalues import isReturnStructure
from diracmq.client.base import Client

from fault.faultlib import counters, settings_for

pytestmark = pytest.mark.timeout(120)

EMQDECODE = 1145
VALID = {"v": 1, "method": "echo", "args": ["hello"]}


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def bodies(rng: random.Random):
    """(label, body) pairs: hostile bodies, then well-formed ones."""
    valid = pack(VALID)
    for i in range(120):
        yield f"random-{i}", rng.randbytes(rng.randrange(0, 2000))
    for i in range(40):
        yield f"truncated-{i}", valid[: rng.randrange(0, len(valid))]
    for i in range(30):
        data = bytearray(pack({"v": 1, "method": "echo", "args": [list(range(i))]}))
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        yield f"flipped-{i}", bytes(data)
    yield "nested-arrays", b"\x91" * 100_000 + b"\xc0"
    yield "nested-maps", b"\x81\xc0" * 50_000 + b"\xc0"
    yield "nested-ok", pack({"v": 1, "method": "echo", "args": [[[[[[[[[[1]]]]]]]]]]})
    yield "lying-length", b"\x83\xa1v\x01\xa6method\xa4echo\xa4args\xdd\xff\xff\xff\xff"
    yield "huge-arg", pack({"v": 1, "method": "echo", "args": ["x" * (16 * 1024 * 1024)]})
    yield "huge-random", rng.randbytes(8 * 1024 * 1024)
    yield "many-args", pack({"v": 1, "method": "echoArgs", "args": list(range(100_000))})
    for i, message in enumerate([
            {"v": 1, "method": rng.choice(["echo", "ping", "whoami", "nope", "_x", "", "a" * 300]),
             "args": rng.choice([[], ["a"], [1, 2, 3], [{"k": [None, True, 1.5]}]])}
            for _ in range(60)]):
        yield f"envelope-{i}", pack(message)


PROPERTY_CASES = [
    {"headers": {"x-deadline": "soon"}},
    {"headers": {"x-deadline": decimal.Decimal("1.5")}},
    {"headers": {"x-deadline": -(2**63)}},
    {"headers": {"x-deadline": datetime.datetime(2000, 1, 1)}},
    {"headers": {"x-deadline": [1, 2]}},
    {"headers": {"x-deadline": {"at": 1}}},
    {"headers": {"x-deadline": True}},
    {"headers": {"x-deadline": 2**62}},
    {"headers": {"x-deadline": None}},
    {"headers": {"x-dirac-group": 123}},
    {"headers": {"x-dirac-group": ["a", "b"]}},
    {"headers": {"x-dirac-group": {"nested": {"deep": 1}}}},
    {"headers": {"x-dirac-group": b"\xff\xfe"}},
    {"headers": {"x-dirac-group": "no-such-group"}},
    {"headers": {"x-death": "not a list"}},
    {"headers": {"x-death": [{"queue": 5, "reason": None, "count": "many"}]}},
    {"headers": {"x-death": [1, "two", None]}},
    {"headers": {}},
    {"content_type": "text/plain"},
    {"content_type": None},
    {"message_id": None},
    {"message_id": ""},
    {"message_id": "x" * 255},
    {"user_id": None},
    {"expiration": "600000"},
    {"priority": 9},
    {"delivery_mode": 2},
    {"type": "weird", "app_id": "fuzzer", "timestamp": 0},
]


def test_worker_survives_hostile_messages_and_answers(node, pool):
    worker = pool.start(threads=4)
    service = f"{worker.system}/Chaos"
    rng = random.Random(4)
    conn = pika.BlockingConnection(pika.URLParameters(node.url))
    try:
        channel = conn.channel()
        # Direct Reply-to: a worker replies only to the caller's own destination
        reply_queue = "amq.rabbitmq.reply-to"
        replies: dict[str, list] = {}
        stray = []

        def on_reply(_ch, _method, props, body):
            if props.correlation_id:
                replies.setdefault(props.correlation_id, []).append(body)
            else:
                stray.append(body)

        channel.basic_consume(reply_queue, on_reply, auto_ack=True)
        expected, unanswerable = {}, []
        cases = list(bodies(rng))
        cases += [(f"props-{i}", pack(VALID), case) for i, case in enumerate(PROPERTY_CASES)]
        cases += [("reply-to-missing-queue", pack(VALID), {"reply_to": "no.such.queue." + "q"}),
                  ("reply-to-empty", pack(VALID), {"reply_to": ""}),
                  ("reply-to-none", pack(VALID), {"reply_to": None}),
                  ("past-deadline", pack(VALID), {"headers": {"x-deadline": 1}})]
        for case in cases:
            label, body = case[0], case[1]
            extra = case[2] if len(case) > 2 else {}
            corr_id = uuid.uuid4().hex
            fields = {"content_type": codec.CONTENT_TYPE, "correlation_id": corr_id,
                      "message_id": corr_id, "reply_to": reply_queue, "user_id": "guest"}
            fields.update(extra)
            channel.basic_publish(topology.REQUEST_EXCHANGE, service, body,
                                  pika.BasicProperties(**fields))
            deadline = (fields.get("headers") or {}).get("x-deadline")
            expired = isinstance(deadline, int) and not isinstance(deadline, bool) \
                and deadline < time.time() * 1000
            if fields["reply_to"] == reply_queue and not expired:
                expected[corr_id] = label
            else:
                unanswerable.append(label)
        deadline = time.monotonic() + 60
        while set(expected) - set(replies) and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.5)
        conn.process_data_events(time_limit=0.5)
    finally:
        conn.close()
    missing = [expected[c] for c in expected if c not in replies]
    assert not missing, f"no reply to {len(missing)} requests: {missing[:20]}"
    twice = [expected[c] for c, r in replies.items() if len(r) > 1]
    assert not twice, f"answered more than once: {twice}"
    assert set(replies) <= set(expected), "a reply to a request that could not be answered"
    decode_errors = 0
    for corr_id, [body] in replies.items():
        reply = msgpack.unpackb(body, raw=False, strict_map_key=False)
        assert isReturnStructure(reply), (expected[corr_id], reply)
        decode_errors += reply.get("Errno") == EMQDECODE
    assert decode_errors >= 100, decode_errors
    assert worker.returncode is None, worker.diagnostics("the worker died")
    seen = counters(settings_for(node.url), worker.system)
    assert seen.get("internal_errors", 0) == 0, seen
    assert seen["no_reply_to"] == 2 and seen["expired"] == 2, seen  # x-deadline 1 and -2**63
    assert seen["foreign_reply_to"] >= 1, seen  # a queue not the caller's: refused
    client = Client(url=service, settings=settings_for(node.url))
    assert client.echo("still here", timeout=10) == {"OK": True, "Value": "still here"}
    print(f"fuzz through the broker: {len(cases)} messages, {len(replies)} replies "
          f"({decode_errors} EMQDECODE), counters {seen}")


def test_nested_tuples_do_not_kill_the_worker(node, pool):
    worker = pool.start(threads=2)
    worker.expected_returncode = None  # the bug kills it: let the teardown reap it
    data = codec.packb([])
    for _ in range(400):
        data = msgpack.packb(msgpack.ExtType(codec.EXT_TUPLE, data))
    conn = pika.BlockingConnection(pika.URLParameters(node.url))
    try:
        channel = conn.channel()
        # Direct Reply-to: a worker replies only to the caller's own destination
        reply_queue = "amq.rabbitmq.reply-to"
        replies = []
        channel.basic_consume(reply_queue, lambda *a: replies.append(a[3]), auto_ack=True)
        channel.basic_publish(topology.REQUEST_EXCHANGE, f"{worker.system}/Chaos",
                              pack({"v": 1, "method": "echo", "args": [msgpack.ExtType(
                                  codec.EXT_TUPLE, data)]}),
                              pika.BasicProperties(correlation_id="deep", message_id="deep",
                                                   reply_to=reply_queue))
        deadline = time.monotonic() + 10
        while not replies and worker.returncode is None and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
    finally:
        conn.close()
    time.sleep(0.3)
    assert worker.returncode is None, f"the worker died with status {worker.returncode}"
    assert replies and msgpack.unpackb(replies[0])["Errno"] == EMQDECODE
    worker.expected_returncode = 0
