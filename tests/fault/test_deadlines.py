"""Deadlines and nobody listening: a caller never waits past its timeout, stale work is not run.

Issue 4: every request carries its deadline (AMQP ``expiration`` and the ``x-deadline``
header, epoch ms); a worker drops a request that reaches it after its deadline
without running it (counter ``expired``); a call to a service without a queue fails
at once with EMQNOQUEUE; one whose queue has no worker fails by its deadline with
EMQNOWORKER.
"""

from __future__ import annotations

import errno
import time
import uuid

import pika
import pytest
from diracmq.broker import topology
from diracmq.broker.derrno import EMQNOQUEUE, EMQNOWORKER
from diracmq.client.base import Client

from fault.faultlib import SLACK, Calls, account, counters, queue_state, settings_for, wait_for

pytestmark = pytest.mark.timeout(90)


def test_request_that_waited_past_its_deadline_is_not_run(node, pool):
    """One handler thread, busy 3 s: a 1 s call behind it times out and is never run.

    B is prefetched by the worker (prefetch = 2 x threads) and waits in its pool: the
    worker's own deadline check drops it (counter ``expired``).  C waits in the broker
    queue: its AMQP expiration drops it there.  Neither caller waits past 1 s.
    """
    system = pool.start(threads=1).system
    settings = settings_for(node.url)
    client = Client(url=f"{system}/Chaos", settings=settings)
    calls = Calls()
    [busy] = calls.start(client, "record", 3.0, tags=["busy"], timeout=20)
    wait_for(lambda: pool.executions()["busy"], 10, "the busy call to start")
    late = []
    for tag in ("B", "C"):
        late += calls.start(client, "record", 0, tags=[tag], timeout=1.0)
        time.sleep(0.1)
    for thread in [busy, *late]:
        thread.join(30)
    by_tag = {c.tag: c for c in calls.records}
    assert by_tag["busy"].ok, by_tag["busy"].result
    for tag in ("B", "C"):
        assert by_tag[tag].errno == errno.ETIMEDOUT, by_tag[tag].result
        assert 1.0 <= by_tag[tag].elapsed <= 1.0 + SLACK, by_tag[tag]
    # the worker got B, found it past its deadline and did not run it
    assert counters(settings, system)["expired"] == 1
    runs = pool.executions()
    assert runs["B"] == 0 and runs["C"] == 0, runs
    assert queue_state(node.url, topology.service_queue_name(f"{system}/Chaos")) == (0, 1)
    account(calls.records, runs, {errno.ETIMEDOUT}, max_error_executions=0)
    assert client.record("after", 0, timeout=10)["OK"]


def test_no_queue_fails_at_once_naming_the_service(node, pool):
    pool.start()  # declares the request exchange on this node
    service = f"N{uuid.uuid4().hex[:10]}/Nobody"
    started = time.monotonic()
    result = Client(url=service, settings=settings_for(node.url)).ping(timeout=10)
    elapsed = time.monotonic() - started
    assert result["OK"] is False and result["Errno"] == EMQNOQUEUE, result
    assert service in result["Message"]
    assert elapsed < 1.0, f"took {elapsed:.2f}s: an unroutable call must fail at once"


def test_queue_without_worker_fails_by_its_deadline(node, pool):
    pool.start()
    service = f"N{uuid.uuid4().hex[:10]}/Idle"
    queue = topology.service_queue_name(service)
    conn = pika.BlockingConnection(pika.URLParameters(node.url))
    try:
        topology.declare_service_queue(conn.channel(), service)
    finally:
        conn.close()
    started = time.monotonic()
    result = Client(url=service, settings=settings_for(node.url)).ping(timeout=1.5)
    elapsed = time.monotonic() - started
    assert result["OK"] is False and result["Errno"] == EMQNOWORKER, result
    assert service in result["Message"] and "no consumer" in result["Message"]
    assert 1.5 <= elapsed <= 1.5 + SLACK
    # the request does not linger for a worker that comes later: it expired in the queue
    wait_for(lambda: queue_state(node.url, queue) == (0, 0), 5, "the request to expire")
