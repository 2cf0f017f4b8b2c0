"""Issue 11, cases 3, 4 and 5: what a worker sends, and where.

3. a reply over the broker's message size limit: S_ERROR(EMQENCODE) to the caller,
   and the worker keeps serving (its channel is not lost for good);
4. a ``reply_to`` naming a queue that is not the caller's reply destination: the
   worker publishes nothing there;
5. the protocol's rules as docs/protocol.md and docs/security.md state them: only
   the integer 1 is version 1; a request without ``user_id`` naming a
   ``dirac.reply.*`` queue is dropped and counted ``foreign_reply_to``.
"""

from __future__ import annotations

import os
import uuid

import pika
import pytest
from diracmq.broker import topology
from diracmq.broker.derrno import EMQDECODE, EMQENCODE
from diracmq.client.base import Client
from diracmq_testing import RawRPC, pack

from hostile.hostilelib import HostileNode, assert_alive, settings_for

pytestmark = pytest.mark.timeout(180)


def _ready_messages(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


# ------------------------------------------------------------------ case 3
def test_case03_reply_over_the_brokers_limit_is_emqencode_private_node(node_pool):
    """Case 3, on a node whose ``max_message_size`` is 4 MiB, the worker told so
    (``DIRAC_MAX_MESSAGE_BYTES``): a 5 MiB reply is S_ERROR(EMQENCODE), and the worker
    answers the next calls."""
    limit = HostileNode.MAX_MESSAGE_SIZE
    worker = node_pool.start(threads=2, env={"DIRAC_MAX_MESSAGE_BYTES": str(limit)})
    client = Client(url=f"{worker.system}/Hostile",
                    settings=settings_for(node_pool.broker_url, rpc_timeout=15))
    result = client.huge(limit + 2**20)
    assert not result["OK"] and result.get("Errno") == EMQENCODE, result
    for _ in range(3):
        after = client.ping(timeout=10)
        assert after["OK"], after
    assert client.huge(1000)["OK"]
    assert_alive(worker, "the worker died after an oversized reply")


def test_case03_reply_over_128_mib_is_emqencode_default_limit(hpool, settings):
    """Case 3 with the broker's default limit (128 MiB) and the worker's defaults: a
    129 MiB reply is S_ERROR(EMQENCODE), and the worker answers the next calls."""
    worker = hpool.start(threads=2)
    client = Client(url=f"{worker.system}/Hostile", settings=settings)
    result = client.huge(129 * 2**20, timeout=60)
    assert not result["OK"] and result.get("Errno") == EMQENCODE, \
        {k: v for k, v in result.items() if k != "CallStack"}
    after = client.ping(timeout=10)
    assert after["OK"], after
    assert_alive(worker, "the worker died after an oversized reply")


# ------------------------------------------------------------------ case 4
def _other_queue(channel, kind: str) -> str:
    """Declare the queue a hostile caller names as its reply_to; return its name."""
    if kind == "parking queue":
        return topology.PARKING_QUEUE  # declared by the worker
    if kind == "another service's queue":
        return topology.declare_service_queue(channel, f"Victim{uuid.uuid4().hex[:8]}/Jobs")
    name = f"dirac.reply.mallory.somehost.{os.getpid()}.{uuid.uuid4().hex[:12]}"
    channel.queue_declare(name, arguments={"x-expires": 60000})
    return name


@pytest.mark.parametrize("user_id", ["guest", None])
@pytest.mark.parametrize("kind", ["parking queue", "another service's queue",
                                  "another user's reply queue"])
def test_case04_worker_never_publishes_into_a_queue_that_is_not_the_callers(
        hpool, raw: RawRPC, kind, user_id):
    """Case 4: reply_to = the parking queue, another service's request queue, another
    user's ``dirac.reply.*`` queue: the worker publishes nothing there."""
    worker = hpool.start(threads=1)  # one handler thread: requests are served in order
    service = f"{worker.system}/Hostile"
    target = _other_queue(raw.channel, kind)
    before = _ready_messages(raw.url, target)
    raw.publish(service, pack({"v": 1, "method": "echo", "args": ["into your queue"]}),
                reply_to=target, user_id=user_id if user_id is None else raw.user)
    # Served after the hostile request by the same thread: it has been dealt with.
    assert raw.call(service, "echo", "sync")["OK"]
    after = _ready_messages(raw.url, target)
    assert after == before, f"the worker published {after - before} message(s) into {target}"
    assert_alive(worker, "the worker died")


# ------------------------------------------------------------------ case 5
@pytest.mark.parametrize("version", [True, 1.0], ids=["true", "1.0"])
def test_case05_only_the_integer_1_is_protocol_version_1(hpool, raw: RawRPC, version):
    """Case 5: ``"v": true`` and ``"v": 1.0`` are refused with EMQDECODE
    (docs/protocol.md: a worker refuses any value but the integer 1)."""
    worker = hpool.start(threads=1)
    reply = raw.request(f"{worker.system}/Hostile",
                        pack({"v": version, "method": "echo", "args": ["x"]}))
    assert reply.get("OK") is False and reply.get("Errno") == EMQDECODE, reply


def test_case05_request_without_user_id_to_a_reply_queue_is_dropped_and_counted(
        hpool, raw: RawRPC):
    """Case 5: a request without ``user_id`` whose reply_to is a ``dirac.reply.<x>.``
    queue gets no reply there and counts ``foreign_reply_to``."""
    worker = hpool.start(threads=1)
    service = f"{worker.system}/Hostile"
    queue = f"dirac.reply.{raw.user}.h11t.{os.getpid()}.{uuid.uuid4().hex[:12]}"
    raw.channel.queue_declare(queue, arguments={"x-expires": 60000})
    before = raw.call(service, "ping")["Value"]["counters"].get("foreign_reply_to", 0)
    raw.publish(service, pack({"v": 1, "method": "echo", "args": ["anonymous"]}),
                reply_to=queue, user_id=None)
    after = raw.call(service, "ping")["Value"]["counters"].get("foreign_reply_to", 0)
    assert after == before + 1, f"foreign_reply_to went from {before} to {after}"
    assert _ready_messages(raw.url, queue) == 0, "a reply reached the dirac.reply queue"
