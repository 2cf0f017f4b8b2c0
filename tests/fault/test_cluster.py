"""A 3-node RabbitMQ cluster with quorum service queues, under steady load (issue 12).

The module starts its OWN cluster (broker/localrabbit.py: three nodes on loopback,
never the shared broker) and two ``dirac-worker --processes 2`` with
``DIRAC_QUEUE_TYPE=quorum`` and the whole URL list; six client threads call all the
time with the URL list too.  Each test then hurts the cluster and checks every call with
``account``: nothing lost, errors only the documented ``EMQCONN`` (a call in flight
on a dying connection), every call back within its timeout, and prints the failover
gap: seconds from the fault to the first call made after it that succeeded.

A handler may run twice for one call when its worker's connection dies before the
ack (the documented at-least-once case, docs/reliability.md): the histogram printed
says how often that happened; more than two runs fails.
"""

from __future__ import annotations

import collections
import errno
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from diracmq.broker import topology
from diracmq.broker.derrno import EMQCONN, EMQDEADLETTER, EMQNOWORKER
from diracmq.broker.localrabbit import LocalCluster, NodeUnavailable
from diracmq.client.base import Client

from fault.faultlib import (
    SLACK,
    Calls,
    FaultPool,
    account,
    drain_queue,
    join_all,
    settings_for,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: What a call may get besides its reply when a node dies or restarts: EMQCONN, a call
#: whose request the broker had *confirmed* when the client's connection to the dying
#: node dropped ("may or may not have run").  A request the broker had not confirmed
#: yet (RabbitMQ 3.10 drops some publishes to a quorum queue whose leader just moved,
#: rabbitmq/rabbitmq-server#9208) is published again by the client (publisher confirms,
#: on with a URL list), so no call ends in ETIMEDOUT or EMQNOWORKER any more.
ALLOWED = frozenset({EMQCONN})

#: The partition test allows more, as the issue does (it asks for no split-brain
#: duplicates there): a request the silenced node holds (delivered to a worker whose
#: connection goes through it, or its reply on the way back) cannot come back before
#: the node wakes, SILENCE seconds later, past the calls' 10 s timeout: ETIMEDOUT, or
#: EMQNOWORKER when the last consumer check (asked of the frozen leader's view)
#: counted none.  Each such call ran at most once (account() checks it).
PARTITION_ALLOWED = frozenset({EMQCONN, errno.ETIMEDOUT, EMQNOWORKER})

CRASH_STATUS = 17  # tests/ext/diractest_fault: a handler's os._exit status

#: Seconds a "partitioned" node stays silent: longer than the quorum queues' leader
#: election, shorter than Erlang's net_ticktime (60 s).  A shorter net_ticktime made
#: the nodes of this 2-core machine see spurious partitions under load and pause
#: (pause_minority) with no fault injected at all.
SILENCE = 15


@pytest.fixture(scope="module")
def cluster(request) -> Iterator[LocalCluster]:
    folder = Path(tempfile.mkdtemp(prefix="diracmq-cluster-test-"))
    try:
        made = LocalCluster(3, folder, label="quorum")
    except NodeUnavailable as exc:
        pytest.skip(str(exc))
    try:
        made.start()
    except NodeUnavailable as exc:
        made.close()
        pytest.fail(f"the test cluster did not start: {exc}", pytrace=False)
    yield made
    made.close()
    if request.session.testsfailed:
        print(f"cluster test failed: the nodes' logs are in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def running(cluster: LocalCluster) -> LocalCluster:
    """The cluster with every node up (a failed test may have left one down)."""
    for node in cluster.nodes:
        if not node.running():
            node.start()
    return cluster


@pytest.fixture
def pool(running: LocalCluster, request) -> Iterator[FaultPool]:
    # next to the nodes' logs, kept when a test fails
    workdir = running.dir / f"workers-{request.node.name[:40]}"
    workdir.mkdir()
    workers = FaultPool(",".join(running.urls()), workdir, private_vhost=True)
    yield workers
    problems = workers.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def leader_of(cluster: LocalCluster, queue: str) -> int:
    """Index of the node holding ``queue``'s quorum leader."""
    for node in cluster.nodes:
        if not node.running():
            continue
        for line in node.ctl("-q", "list_queues", "name", "type", "leader").splitlines():
            parts = line.split("\t")
            if parts[0] == queue:
                assert parts[1] == "quorum", line
                return next(i for i, n in enumerate(cluster.nodes) if n.name == parts[2])
    raise AssertionError(f"no queue {queue} on the cluster")


def members_online(node, queue: str) -> int:
    """How many members of quorum queue ``queue`` are leader or follower (per ``node``)."""
    try:
        out = node.queues_tool("quorum_status", queue, timeout=15)
    except NodeUnavailable:
        return 0
    return sum(1 for line in out.splitlines() if "leader" in line or "follower" in line)


class Load:
    """Two quorum workers (2 processes each) and six calling threads on the URL list."""

    def __init__(self, cluster: LocalCluster, pool: FaultPool, heartbeat: int = 30) -> None:
        env = {"DIRAC_QUEUE_TYPE": "quorum", "DIRAC_BROKER_HEARTBEAT": str(heartbeat)}
        self.first = pool.start(processes=2, env=env, timeout=60)
        self.second = pool.start(self.first.system, processes=2, env=env, timeout=60)
        self.queue = topology.service_queue_name(f"{self.first.system}/Chaos")
        self.pool, self.cluster = pool, cluster
        settings = settings_for(",".join(cluster.urls()), connect_timeout=8.0,
                                heartbeat=heartbeat)
        self.client = Client(url=f"{self.first.system}/Chaos", settings=settings)
        self.calls, self.stop = Calls(), threading.Event()
        self.threads = self.calls.run_load(
            lambda i: self.calls.call(self.client, "record", 0.05, timeout=10), 6, self.stop)

    def served_since(self, moment: float) -> bool:
        return any(r.ok and r.started > moment for r in list(self.calls.records))

    def gap_after(self, moment: float, within: float = 40.0) -> float | None:
        """Seconds from ``moment`` to the end of the first call started after it that
        succeeded; None if none did within ``within`` seconds."""
        deadline = time.monotonic() + within
        while not self.served_since(moment):
            if time.monotonic() > deadline:
                print(f"no successful call {within:g}s after the fault:\n{self.state(moment)}")
                return None
            time.sleep(0.05)
        return min(r.started + r.elapsed for r in list(self.calls.records)
                   if r.ok and r.started > moment) - moment

    def state(self, moment: float) -> str:
        """What the calls since ``moment`` and the queue look like (for a failure)."""
        since = [r for r in list(self.calls.records) if r.started > moment]
        outcomes = collections.Counter("OK" if r.ok else str(r.errno) for r in since)
        queues = "(no node answered)"
        for node in self.cluster.nodes:
            if node.running():
                try:
                    queues = node.ctl("-q", "list_queues", "name", "type", "leader", "messages",
                                      "messages_unacknowledged", "consumers", timeout=15)
                    for other in self.cluster.nodes:
                        if other.running():
                            queues += f"connections on {other.name}:\n" + other.ctl(
                                "-q", "list_connections", "name", "recv_cnt", "send_cnt",
                                "channels", timeout=15)
                    break
                except NodeUnavailable as exc:
                    queues = str(exc)
        return (f"calls since: {len(since)} {dict(outcomes)}; last: "
                f"{[r.result for r in since[-2:]]}\nqueues:\n{queues}")

    def finish(self, what: str, slack: float = SLACK, allowed: frozenset[int] = ALLOWED):
        time.sleep(2.0)  # steady load on the healed cluster
        self.stop.set()
        join_all(self.threads, timeout=60)
        figures = account(self.calls.records, self.pool.executions(), allowed,
                          max_ok_executions=2, max_error_executions=2, slack=slack)
        late = [f"{r.elapsed:.1f}s" for r in self.calls.records
                if r.elapsed > r.timeout + SLACK]
        if late:
            print(f"{what}: {len(late)} call(s) returned after their timeout: {late}")
        print(f"{what}:", figures.summary())
        kinds = collections.Counter(
            re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "#", r.result.get("Message", ""))[:160]
            for r in self.calls.records if not r.ok)
        for message, count in kinds.most_common(5):
            print(f"{what}:   {count} x {message}")
        after = [self.client.record(f"after-{what[:8]}-{i}", 0, timeout=10) for i in range(10)]
        assert all(r["OK"] for r in after), [r for r in after if not r["OK"]][:3]
        return figures


def test_sigkill_the_leader_node_and_bring_it_back(running, pool):
    """SIGKILL the node holding the queue leader: nothing lost, nothing run twice but the
    at-least-once case; new calls served again within 20 s of the kill (well under a
    second in the runs reported in docs/reliability.md: RabbitMQ 3.10's refusals after
    the leader moved, rabbitmq-server#9208, are published again on a new connection),
    then the node rejoins."""
    load = Load(running, pool)
    wait_for(lambda: load.served_since(time.monotonic() - 1), 20, "calls flowing")
    victim = running.nodes[leader_of(running, load.queue)]
    killed = time.monotonic()
    victim.kill()
    gap = load.gap_after(killed, within=20)
    victim.start()
    back = time.monotonic()
    wait_for(lambda: load.served_since(back), 30, "calls after the node came back")
    figures = load.finish("leader node killed")
    assert gap is not None, "no new call served within 20 s of the kill (until the node " \
                            "was back: rabbitmq-server#9208 not worked around?)"
    print(f"leader node killed: first successful new call {gap:.2f}s after the kill")
    assert figures.ok > 0


def test_rolling_restart_of_all_three_nodes(running, pool):
    """Stop and start each node in turn under load: nothing lost, calls keep flowing."""
    load = Load(running, pool)
    wait_for(lambda: load.served_since(time.monotonic() - 1), 20, "calls flowing")
    gaps = []
    for node in running.nodes:
        down = time.monotonic()
        node.stop()
        gaps.append(load.gap_after(down, within=15))
        node.start()
        # every quorum member must be back before the next node goes
        wait_for(lambda n=node: members_online(n, load.queue) == 3, 60,
                 "the queue's three members online")
        up = time.monotonic()
        if load.gap_after(up, within=60) is None:
            raise AssertionError(f"no call served 60s after {node.name} came back")
    figures = load.finish("rolling restart")
    print("rolling restart: first successful new call after each stop:",
          ", ".join("after the restart" if g is None else f"{g:.2f}s" for g in gaps))
    assert figures.ok > 0


def test_partitioned_node_makes_no_split_brain_duplicates(running, pool):
    """The leader's node goes silent (SIGSTOP: cut off from its peers and clients) for
    SILENCE seconds, then comes back: the other two elect a new leader and serve; the
    old one steps down; no call runs on both sides of the cut."""
    load = Load(running, pool, heartbeat=2)
    wait_for(lambda: load.served_since(time.monotonic() - 1), 20, "calls flowing")
    victim = running.nodes[leader_of(running, load.queue)]
    cut = time.monotonic()
    victim.freeze()
    try:
        gap = load.gap_after(cut, within=SILENCE)
        time.sleep(max(0.0, cut + SILENCE - time.monotonic()))  # a new leader took over
    finally:
        victim.thaw()
    healed = time.monotonic()
    wait_for(lambda: load.served_since(healed), 40, "calls after the partition healed")
    # Channel operations of a reconnection are bounded (a client reconnecting to the
    # silenced node, or to a node pausing itself, gives it up and tries another): no
    # call may return later than its timeout (+ SLACK) here either.
    figures = load.finish("partition", allowed=PARTITION_ALLOWED)
    print("partition: first successful new call "
          + ("only after the node woke" if gap is None else f"{gap:.2f}s after the cut"))
    # split brain would show as a call run on both sides: account() allows 2 runs only
    # for the at-least-once case; print the histogram for the report
    assert figures.ok > 0


def test_poison_request_on_a_quorum_queue_is_parked_by_delivery_count(running, pool):
    """Quorum queues count deliveries themselves (no retry loop): a request that kills
    every worker comes back as a suspect, runs alone, and once it has killed a worker
    while alone (its alone-file) with x-delivery-count at --poison-after (2), it is
    parked: 2 deaths, as on a classic queue, and its caller gets EMQDEADLETTER."""
    env = {"DIRAC_QUEUE_TYPE": "quorum"}
    first = pool.start(threads=1, env=env, timeout=60)
    workers = [first, *(pool.start(first.system, threads=1, env=env, timeout=60)
                        for _ in range(3))]
    client = Client(url=f"{first.system}/Chaos",
                    settings=settings_for(",".join(running.urls())))
    result = client.crash("poison-q", timeout=60)
    assert result["OK"] is False and result["Errno"] == EMQDEADLETTER, result
    wait_for(lambda: len([w for w in workers if w.returncode is not None]) == 2, 10,
             "two workers dead")
    dead = [w for w in workers if w.returncode is not None]
    for worker in dead:
        assert worker.returncode == CRASH_STATUS, worker.diagnostics("unexpected exit")
        worker.expected_returncode = CRASH_STATUS
    starts = [r for r in pool.records() if r.get("event") == "start" and r["tag"] == "poison-q"]
    assert len(starts) == 2
    parked = [msgpack.unpackb(body, raw=False) for _, body
              in drain_queue(running.nodes[0].url(), topology.PARKING_QUEUE)]
    assert [b for b in parked if b.get("args") == ["poison-q"]], parked
    assert client.record("after-poison", 0, timeout=10)["OK"]
