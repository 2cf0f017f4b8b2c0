"""Steady load against a private RabbitMQ node, one worker killed, the broker restarted.

    .venv/bin/python tests/fault/steady_load_report.py [--duration 40] [--threads 8]

Starts its own node (tests/fault/rabbitnode.py: never the shared broker), one
``dirac-worker --processes 2`` (a supervisor with two worker processes, each 4 handler
threads), and ``--threads`` client threads calling ``Chaos.record`` (20 ms of work,
timeout 10 s) for ``--duration`` seconds.  At 25% of the run it SIGKILLs one worker
process (the supervisor starts another); at 50% it restarts the broker (full stop
and start of the Erlang VM).  Then it prints the figures of issue 4's closing note:
calls made, answered OK, answered S_ERROR (by errno and reason), lost, and the
handler executions per call, and exits 1 if a call was lost or hung.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]  # tests/ and the repo

from diracmq.broker.derrno import EMQCONN, EMQNOWORKER  # noqa: E402
from diracmq.client.base import Client  # noqa: E402

from fault.faultlib import SLACK, Calls, FaultPool, errno_name, settings_for  # noqa: E402
from fault.rabbitnode import RabbitNode  # noqa: E402

REASONS = [
    ("connection to the broker lost while waiting", "connection lost with the call in flight"),
    ("cannot reach the broker", "broker unreachable for the whole call"),
    ("could not publish", "connection failed 3 times before the request was published"),
    ("has no consumer", "no worker consuming by the deadline"),
    ("no reply from", "no reply by the deadline"),
]


def reason(message: str) -> str:
    for fragment, label in REASONS:
        if fragment in message:
            return label
    return message[:80]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the client's reconnect warnings: not figures
    logging.getLogger("pika").setLevel(logging.CRITICAL)

    node = RabbitNode("steady")
    workdir = Path(tempfile.mkdtemp(prefix="diracmq-steady-"))
    pool = None
    try:
        t0 = time.monotonic()
        node.start()
        print(f"private node {node.name} on 127.0.0.1:{node.port} up in "
              f"{time.monotonic() - t0:.1f}s", flush=True)
        pool = FaultPool(node.url, workdir, private_vhost=True)
        supervisor = pool.start(processes=2, threads=4)
        pids = supervisor.wait_ready(2)
        supervisor.expected_returncode = None
        client = Client(url=f"{supervisor.system}/Chaos",
                        settings=settings_for(node.url, connect_timeout=10.0))
        calls, stop = Calls(), threading.Event()
        threads = calls.run_load(
            lambda i: calls.call(client, "record", 0.02, timeout=args.timeout),
            args.threads, stop)
        events = []
        time.sleep(args.duration * 0.25)
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        events.append(f"t={time.monotonic() - t0:.1f}s SIGKILL worker process {victim}")
        time.sleep(args.duration * 0.25)
        down = time.monotonic()
        node.restart()
        events.append(f"t={down - t0:.1f}s broker restarted (stop + start of the VM, "
                      f"{time.monotonic() - down:.1f}s down)")
        time.sleep(args.duration * 0.5)
        stop.set()
        deadline = time.monotonic() + args.timeout + 30
        for thread in threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        hung = [t.name for t in threads if t.is_alive()]
        runs = pool.executions()
        records = calls.records
        ok = [c for c in records if c.ok]
        errors = [c for c in records if not c.ok]
        late = [c for c in records if c.elapsed > c.timeout + SLACK]
        lost = len(hung) + sum(1 for c in ok if runs.get(c.tag, 0) == 0)
        histogram = collections.Counter(runs.get(c.tag, 0) for c in records)
        print()
        for event in events:
            print("  " + event)
        print(f"\ncalls made:           {len(records)}  ({args.threads} threads, "
              f"{args.duration:g}s, timeout {args.timeout:g}s each)")
        print(f"answered OK:          {len(ok)}")
        print(f"answered S_ERROR:     {len(errors)}")
        by_reason = collections.Counter((errno_name(c.errno), reason(c.result["Message"]))
                                        for c in errors)
        for (name, why), count in sorted(by_reason.items()):
            print(f"    {count:5d}  {name}: {why}")
        print(f"lost:                 {lost}  (never returned: {len(hung)})")
        print(f"returned late:        {len(late)}  (> timeout + {SLACK:g}s; "
              f"slowest {max((c.elapsed for c in records), default=0):.2f}s)")
        for call in late:
            print(f"    late: {call.tag} after {call.elapsed:.2f}s: {errno_name(call.errno)}: "
                  f"{reason(call.result.get('Message', ''))}")
        print("handler executions per call:")
        for count, calls_with in sorted(histogram.items()):
            kinds = collections.Counter("OK" if c.ok else errno_name(c.errno)
                                        for c in records if runs.get(c.tag, 0) == count)
            print(f"    {count} execution(s): {calls_with:5d} calls  ({dict(kinds)})")
        unexpected = [c for c in errors if c.errno not in (EMQCONN, EMQNOWORKER, 110)]
        twice_ok = [c for c in ok if runs.get(c.tag, 0) > 1]
        for call in twice_ok:
            pids_ran = [r["pid"] for r in pool.records()
                        if r.get("event") == "start" and r["tag"] == call.tag]
            ended = [r["pid"] for r in pool.records()
                     if r.get("event") == "end" and r["tag"] == call.tag]
            print(f"    ran twice: {call.tag}: started in {pids_ran}, completed in {ended}")
        return 1 if lost or late or unexpected else 0
    finally:
        if pool is not None:
            for worker in pool.workers:
                worker.signal(signal.SIGTERM)
            pool.stop_all()
        node.close()


if __name__ == "__main__":
    sys.exit(main())
