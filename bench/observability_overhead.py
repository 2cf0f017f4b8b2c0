"""What the metrics and logging hooks add to each request a worker serves.

Measures, in µs per request, the hooks ``workers/server.py`` runs for every request
(``logformat.begin_request``/``finish_request``/``end_request``, ``metrics.in_flight``
twice, ``metrics.observe_call``, ``metrics.reply_cache_size``), called exactly as the
server calls them, in three set-ups:

* ``off``: no ``--metrics-port``, plain logs at INFO (the default worker);
* ``metrics``: metrics enabled (``--metrics-port``; single-process mode);
* ``metrics+json``: metrics enabled and ``--log-format json``, which writes one
  ``request served`` line per request (to /dev/null here).

Best of ``--rounds`` rounds of ``--n`` requests each (as timeit: other processes on a
shared machine only ever add time).  The whole call path is measured by bench/run.py;
this isolates what the hooks cost, to set against its per-call figures.

Run:  .venv/bin/python bench/observability_overhead.py [--n 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time

import pika
from diracmq.workers import logformat, metrics

SERVICE = "Bench/Echo"
RESULT = {"OK": True, "Value": 42}
CREDENTIALS = {"username": "alice", "group": "dirac_user", "properties": []}


def one_round(n: int) -> float:
    props = pika.BasicProperties(message_id="a" * 21, correlation_id="a" * 21,
                                 user_id="alice", headers={"x-deadline": 1})
    gc.disable()
    started = time.perf_counter()
    for _ in range(n):
        token = logformat.begin_request(SERVICE, props)
        metrics.in_flight(SERVICE, 1)
        metrics.observe_call(SERVICE, "echo", RESULT, 0.0001)
        logformat.finish_request("echo", CREDENTIALS, metrics.outcome_of(RESULT), 0.0001)
        metrics.reply_cache_size(1000)
        metrics.in_flight(SERVICE, -1)
        logformat.end_request(token)
    elapsed = time.perf_counter() - started
    gc.enable()
    return elapsed / n * 1e6


def measure(label: str, n: int, rounds: int) -> None:
    best = min(one_round(n) for _ in range(rounds))
    print(f"| {label} | {best:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    devnull = open(os.devnull, "w")
    sys.stderr = devnull  # the handlers configure() installs write to stderr
    print("| set-up | µs per request |\n|---|---|")
    logformat.configure("INFO", "plain")
    measure("off (default)", args.n, args.rounds)
    metrics.enable(None, threads=15)
    measure("metrics", args.n, args.rounds)
    logformat.configure("INFO", "json")
    measure("metrics+json", args.n, args.rounds)
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
