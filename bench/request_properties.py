"""What the broker's work on a request's properties costs, timed with raw pika alone.

One connection publishes, another consumes (both in this thread, on the broker named by
``DIRAC_BROKER_URL``, default the local one), one message at a time; each variant is
timed from ``basic_publish`` to the consumer's callback.  Variants: raw pika's request
(``reply_to``, ``correlation_id``, the default exchange), then each property our protocol
adds alone (``expiration``, the ``x-deadline`` header, ``user_id``, publishing through a
direct exchange, ``mandatory``), then all of them together with ``message_id`` (our
request, docs/protocol.md).  Rounds are interleaved in a random order; the median of
each round's median is printed.

Run:  .venv/bin/python bench/request_properties.py [--rounds 6] [--messages 1500]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import pika

URL = os.environ.get("DIRAC_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F").split(",")[0]
#: {"v": 1, "method": "echo", "args": ["x"]}
BODY = b"\x83\xa1v\x01\xa6method\xa4echo\xa4args\x91\xa1x"
VARIANTS = ["raw pika's", "+expiration", "+x-deadline header", "+user_id",
            "+direct exchange", "+mandatory", "ours (all of them, +message_id)"]


def properties(variant: str, user: str) -> pika.BasicProperties:
    every = variant.startswith("ours")
    kw: dict = {"content_type": "application/msgpack", "reply_to": "dirac.reply.x.1.abc",
                "correlation_id": "abcdef0123456789abcd1"}
    if every or variant == "+expiration":
        kw["expiration"] = "600000"
    if every or variant == "+x-deadline header":
        kw["headers"] = {"x-deadline": int(time.time() * 1000) + 600000}
    if every or variant == "+user_id":
        kw["user_id"] = user
    if every:
        kw["message_id"] = kw["correlation_id"]
    return pika.BasicProperties(**kw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--messages", type=int, default=1500)
    opts = ap.parse_args()
    params = pika.URLParameters(URL)
    user = params.credentials.username
    pub, sub = pika.BlockingConnection(params), pika.BlockingConnection(params)
    cp, cs = pub.channel(), sub.channel()
    exchange = f"bench.props.{os.getpid()}"
    cp.exchange_declare(exchange, "direct", auto_delete=True)
    queue = cp.queue_declare("", exclusive=False, auto_delete=True).method.queue
    cp.queue_bind(queue, exchange, "k")
    got: list[int] = []

    def on_message(ch, method, _props, _body):
        got.append(1)
        ch.basic_ack(method.delivery_tag)

    cs.basic_consume(queue, on_message)
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(opts.rounds):
        order = VARIANTS[:]
        random.shuffle(order)
        for variant in order:
            props = properties(variant, user)
            every = variant.startswith("ours")
            routed = (exchange, "k") if every or variant == "+direct exchange" else ("", queue)
            mandatory = every or variant == "+mandatory"
            times = []
            for _ in range(opts.messages):
                got.clear()
                start = time.perf_counter()
                cp.basic_publish(routed[0], routed[1], BODY, props, mandatory=mandatory)
                while not got:
                    sub.process_data_events(0.1)
                times.append(time.perf_counter() - start)
            results[variant].append(statistics.median(times[opts.messages // 8:]) * 1e6)
    print(f"publish -> deliver, µs (median of {opts.rounds} rounds of {opts.messages}); "
          f"load average {open('/proc/loadavg').read().split()[:3]}")
    for variant in VARIANTS:
        rounds = " ".join(f"{x:.0f}" for x in results[variant])
        print(f"{variant:34s} {statistics.median(results[variant]):7.1f}   rounds: {rounds}")
    pub.close()
    sub.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
