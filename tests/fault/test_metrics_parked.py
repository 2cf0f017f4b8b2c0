"""Metrics of a ``--processes 2`` worker (one endpoint for the supervisor, prometheus_client's
multiprocess mode) while a poison request kills its children and is parked."""

from __future__ import annotations

import pytest
from diracmq.broker import topology
from diracmq.broker.derrno import EMQDEADLETTER
from diracmq.client.base import Client
from diracmq_testing import free_closed_port
from integration.test_observability import scrape, value

from fault.faultlib import drain_queue, settings_for, wait_for

pytestmark = pytest.mark.timeout(120)


def test_parked_requests_and_calls_are_counted_across_processes(node, pool):
    port = free_closed_port()
    worker = pool.start(processes=2, threads=1,
                        args=["--metrics-port", str(port), "--metrics-addr", "127.0.0.1"])
    drain_queue(node.url, topology.PARKING_QUEUE)
    client = Client(url=f"{worker.system}/Chaos", settings=settings_for(node.url))
    for n in range(4):
        assert client.record(f"ok-{n}", 0, timeout=10)["OK"]
    result = client.crash("poison", timeout=30)
    assert result["Errno"] == EMQDEADLETTER, result
    assert client.record("after", 0, timeout=20)["OK"]  # a restarted child serves again

    def parked() -> dict:
        samples = scrape(port)
        # ...and both children up again (live gauges of the dead ones no longer count)
        return samples if value(samples, "dirac_worker_requests_parked_total") == 1 \
            and value(samples, "dirac_worker_handler_threads") == 2 else {}

    samples = wait_for(parked, 30, "the parked request in the supervisor's metrics")
    # Calls served by both children (and by the ones that died since) add up.
    assert value(samples, "rpc_server_call_duration_seconds_count", method="record",
                 outcome="OK") == 5
    assert value(samples, "dirac_worker_requests_retried_total") == 1
    drain_queue(node.url, topology.PARKING_QUEUE)
