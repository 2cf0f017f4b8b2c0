"""Issue 11, cases 1 and 2: a request's properties or reply_to take a worker down.

Both run on the private node (``hnode``): on a worker that falls into a reconnect
loop they would hammer the broker.
"""

from __future__ import annotations

import pytest
from diracmq.broker import topology
from diracmq.client.base import Client

from hostile.hostilelib import (
    assert_alive,
    nested_tables,
    pace_calls,
    pack,
    publish_raw,
    queue_messages,
    settings_for,
    timestamp_table,
)

pytestmark = pytest.mark.timeout(120)

POISON = {"timestamp": timestamp_table(2**64 - 1), "nested": nested_tables(1500)}
#: Lines a worker may log about one poison message (and its one reconnect, at most).
MAX_LINES = 50


def _vhost(url: str) -> str:
    from diracmq_testing import url_vhost

    return url_vhost(url)


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("poison", sorted(POISON))
def test_case01_undecodable_headers_cost_one_reconnect_at_most(hnode, node_pool, poison,
                                                               processes):
    """Case 1: headers pika cannot decode (a timestamp of 2**64-1 s; 1,500 nested tables).

    The worker must stay alive and keep answering innocent calls (at most a couple
    lost to one reconnect), the poison must leave the service queue (parked or
    dropped, never redelivered in a loop) and the log must not be flooded.
    """
    worker = node_pool.start(processes=processes, threads=4)
    service = f"{worker.system}/Hostile"
    client = Client(url=service, settings=settings_for(node_pool.broker_url, rpc_timeout=3))
    assert client.ping()["OK"]
    lines_before = len(worker.lines)
    publish_raw(node_pool.broker_url, service, pack({"v": 1, "method": "ping", "args": []}),
                POISON[poison])

    ok, failed = pace_calls(lambda: client.echo("innocent"), seconds=8,
                            alive=lambda: worker.returncode is None)
    assert_alive(worker, "the worker died of the poison")
    assert len(failed) <= 2, (f"{len(failed)} innocent calls failed ({ok} OK), e.g. "
                              f"{failed[:3]}")
    queued = queue_messages(hnode.ctl, _vhost(node_pool.broker_url),
                            topology.service_queue_name(service))
    assert queued == 0, f"the poison message is still in the service queue ({queued})"
    logged = worker.lines[lines_before:]
    reconnects = sum("worker ready" in line for line in logged)
    assert reconnects <= 1, f"{reconnects} reconnects for one poison message"
    assert len(logged) < MAX_LINES, (f"{len(logged)} log lines about one poison message:\n"
                                     + "\n".join(logged[:20]))
    assert client.echo("after")["OK"]


def test_case02_forged_direct_reply_to_costs_that_request_only(node_pool):
    """Case 2: reply_to ``amq.rabbitmq.reply-to.AAAA.x`` (a Direct Reply-to name the
    broker refuses): no reconnect loop, innocent calls served throughout."""
    worker = node_pool.start(threads=4)
    service = f"{worker.system}/Hostile"
    client = Client(url=service, settings=settings_for(node_pool.broker_url, rpc_timeout=3))
    assert client.ping()["OK"]

    import pika
    from diracmq_testing import REQUEST_EXCHANGE

    conn = pika.BlockingConnection(pika.URLParameters(node_pool.broker_url))
    try:
        channel = conn.channel()
        channel.basic_publish(REQUEST_EXCHANGE, service,
                              pack({"v": 1, "method": "ping", "args": []}),
                              pika.BasicProperties(reply_to="amq.rabbitmq.reply-to.AAAA.x",
                                                   correlation_id="forged",
                                                   message_id="forged-direct-reply-to"))
    finally:
        conn.close()

    ok, failed = pace_calls(lambda: client.echo("innocent"), seconds=6,
                            alive=lambda: worker.returncode is None)
    assert_alive(worker, "the worker died")
    assert not failed, f"{len(failed)} innocent calls failed ({ok} OK), e.g. {failed[:3]}"
    connections = len([line for line in worker.lines if "worker ready" in line])
    assert connections <= 2, worker.diagnostics(
        f"the worker connected {connections} times after one forged reply_to")
