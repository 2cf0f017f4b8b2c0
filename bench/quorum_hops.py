"""What one quorum-queue message costs at the broker, step by step, without diracmq.

bench/cluster.py measures whole diracmq calls; this measures the broker alone with raw
pika on a 3-node cluster it starts (broker/localrabbit.py, never the shared broker), so
the part of a sequential quorum call that no client setting can remove is visible:

* ``publish+confirm``: one message published with publisher confirms, waiting for its
  confirm (classic: the node took it; quorum: the Raft log entry is written and synced
  on a majority, leader plus one follower);
* ``publish->deliver``: one message published on one connection and received by a
  consumer on another (quorum: delivered only once committed), acknowledged, then the
  next one.

Both for a classic queue on node 1 and for a quorum queue whose leader is node 1
(declared there: RabbitMQ's ``client-local`` leader locator), with the publisher and the
consumer on the leader's node or on the other nodes (the inter-node hops).  Every
measurement runs ``--rounds`` times in turn; medians in ms, the load average before and
after.  ``--shm`` puts the nodes' data on /dev/shm (no disk under the fsyncs: not a
deployment setting), ``--wal-sync-method none`` gives up Ra's sync (not durable against
a power loss), ``--wal-write-strategy`` sets Ra's (``sync_after_notify`` counts an
entry as written before its sync: not durable against a power loss during that sync),
``--erl-args`` adds Erlang VM flags.

Run:  .venv/bin/python bench/quorum_hops.py [--messages 400] [--rounds 3] [--shm]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pika
from diracmq.broker.localrabbit import WAL_SYNC_METHODS, WAL_WRITE_STRATEGIES, LocalCluster

BODY = b"x" * 100


def confirm_latency(url: str, queue: str, messages: int) -> list[float]:
    """Latencies (s) of publishing one message and receiving its confirm."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        lat = []
        for _ in range(messages):
            start = time.perf_counter()
            channel.basic_publish("", queue, BODY)
            lat.append(time.perf_counter() - start)
        channel.queue_purge(queue)
        return lat
    finally:
        conn.close()


def deliver_latency(pub_url: str, con_url: str, queue: str, messages: int) -> list[float]:
    """Latencies (s) from publishing one message to its delivery to a consumer."""
    pub = pika.BlockingConnection(pika.URLParameters(pub_url))
    con = pika.BlockingConnection(pika.URLParameters(con_url))
    try:
        pub_channel, con_channel = pub.channel(), con.channel()
        con_channel.basic_qos(prefetch_count=10)
        deliveries = con_channel.consume(queue)
        lat = []
        for _ in range(messages):
            start = time.perf_counter()
            pub_channel.basic_publish("", queue, BODY)
            method, _, _ = next(deliveries)
            lat.append(time.perf_counter() - start)
            con_channel.basic_ack(method.delivery_tag)
        con_channel.cancel()
        return lat
    finally:
        pub.close()
        con.close()


def loadavg() -> str:
    """The machine's 1, 5 and 15 minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shm", action="store_true", help="the nodes' data on /dev/shm")
    parser.add_argument("--wal-sync-method", choices=WAL_SYNC_METHODS)
    parser.add_argument("--wal-write-strategy", choices=WAL_WRITE_STRATEGIES)
    parser.add_argument("--erl-args", default="", help="extra Erlang VM flags")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="diracmq-hops-", dir="/dev/shm")) if args.shm \
        else None
    cluster = LocalCluster(3, folder, label="hops", wal_sync_method=args.wal_sync_method,
                           wal_write_strategy=args.wal_write_strategy,
                           erl_args=args.erl_args.split())
    load_before = loadavg()
    try:
        cluster.start()
        one, two, three = cluster.urls()
        setup = pika.BlockingConnection(pika.URLParameters(one))
        channel = setup.channel()
        channel.queue_declare("hops.classic")
        channel.queue_declare("hops.quorum", durable=True,
                              arguments={"x-queue-type": "quorum"})
        setup.close()
        leader = cluster.nodes[0].ctl("-q", "list_queues", "name", "leader")
        if cluster.nodes[0].name not in leader:
            print(f"the quorum queue's leader is not node 1:\n{leader}", file=sys.stderr)
            return 1
        n = args.messages
        steps: dict[str, Callable[[], list[float]]] = {
            "classic publish+confirm": lambda: confirm_latency(one, "hops.classic", n),
            "quorum publish+confirm, on the leader": lambda: confirm_latency(
                one, "hops.quorum", n),
            "quorum publish+confirm, on a follower": lambda: confirm_latency(
                two, "hops.quorum", n),
            "classic publish->deliver": lambda: deliver_latency(one, one, "hops.classic", n),
            "quorum publish->deliver, both on the leader": lambda: deliver_latency(
                one, one, "hops.quorum", n),
            "quorum publish->deliver, both on followers": lambda: deliver_latency(
                two, three, "hops.quorum", n),
        }
        medians: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                medians[name].append(statistics.median(step()) * 1000)
        print(f"{'step':<46} {'median ms per round':>30}")
        for name, values in medians.items():
            print(f"{name:<46} {' '.join(f'{v:6.2f}' for v in values):>30}")
        print(f"load average before: {load_before}; after: {loadavg()}")
        return 0
    finally:
        cluster.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
