"""What protocol v1 itself costs a sequential call: raw pika on both ends, only the wire differs.

bench/run.py compares our client and worker with a bare raw pika loop.  That ratio mixes
two things: the Python code on each end, and what our wire protocol asks of pika and the
broker (docs/protocol.md): a named request exchange, ``mandatory``, a deadline header,
``expiration``, ``user_id``, ``message_id``, ``content_type`` and ``delivery_mode`` on the
request; ``content_type`` and ``mandatory`` on the reply; a durable service queue with a
dead-letter exchange; a named reply queue with ``x-expires``.  This benchmark takes the
first apart from the second: the *same* raw pika client and server loop (the one of
``raw_pika_rpc.py``) send and answer either the bare request or a protocol v1 request, and
then v1 without one feature at a time.

Variants (``--variants``, comma-separated; ``bare`` and ``v1`` are always measured; the
default is v1 without each feature in turn, and without all of them):

* ``bare``: raw pika's request, default exchange, ``reply_to`` + ``correlation_id``; a
  non-durable queue and an exclusive server-named reply queue (``raw_pika_rpc.py``'s).
* ``v1``: every property and the topology of protocol v1, declared by ``broker.topology``
  itself (service ``BenchWire/Echo``), with the reply properties our Worker sends.
* ``v1-X``: v1 without feature ``X``; several may be chained (``v1-exchange-expiration``).
  ``exchange``: publish through the default exchange to the service queue (the broker
  still routes it to the same durable queue); ``mandatory``; ``expiration``; ``headers``
  (no ``x-deadline``); ``user_id``; ``message_id``; ``extra`` (no ``content_type`` nor
  ``delivery_mode``).

Every variant's properties are encoded *before* the timed loop (pika's encoder would
otherwise charge more fields with more client CPU), so the client does the same Python
work per call in every variant; what differs is the bytes, the broker's work, and the
server's decoding of the properties it receives.  Every round runs each variant in a
fresh client process (``--calls`` calls after 300 warm-up calls), in an order that
alternates from round to round; one server process serves all variants.  The table gives
the medians over ``--rounds`` rounds, and the median of the per-round ratios to ``bare``.

Imports ``broker.topology``, ``broker.properties`` and ``broker.config`` only, which
leave pika as it is (``broker.connection`` would install broker/gather.py's send path).

Run:  .venv/bin/python bench/wire_cost.py [--rounds 20] [--variants v1-exchange,v1-expiration]
JSON: bench/results/wire-<UTC stamp>.json (git-ignored)
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

import msgpack
import pika

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import benchlib  # noqa: E402
from diracmq.broker import topology  # noqa: E402
from diracmq.broker.config import Settings  # noqa: E402
from diracmq.broker.properties import EncodedProperties  # noqa: E402

SERVICE = "BenchWire/Echo"
BARE_QUEUE = "bench.wire.rpc"
FEATURES = ("exchange", "mandatory", "expiration", "headers", "user_id", "message_id", "extra")
DEFAULT_VARIANTS = tuple(f"v1-{feature}" for feature in FEATURES) + (
    "v1-" + "-".join(FEATURES),)
WARMUP = 300


def _check_variant(variant: str) -> None:
    """Exit with a clear message unless ``variant`` is ``bare``, ``v1`` or ``v1-X[-Y...]``."""
    base, *off = variant.split("-")
    if variant != "bare" and (base != "v1" or set(off) - set(FEATURES)):
        raise SystemExit(f"unknown variant {variant!r} (bare, v1, or v1 minus features: "
                         f"{', '.join(FEATURES)})")


def _v1_queue() -> str:
    return topology.service_queue_name(SERVICE)


def serve() -> None:
    """One raw pika server for every variant: bare replies on the bare queue, v1 replies
    (content_type, mandatory, as workers.server.Worker sends them) on the v1 queue."""
    conn = pika.BlockingConnection(pika.URLParameters(benchlib.AMQP_URL))
    ch = conn.channel()
    ch.queue_declare(BARE_QUEUE, durable=False, auto_delete=False)
    v1_queue = topology.declare_service_queue(ch, SERVICE)
    ch.basic_qos(prefetch_count=10)

    def on_request(v1, ch, method, props, body):
        request = msgpack.unpackb(body)
        reply = msgpack.packb({"OK": True, "Value": request["args"][0]})
        if v1:
            ch.basic_publish("", props.reply_to, reply,
                             pika.BasicProperties(content_type="application/x-msgpack",
                                                  correlation_id=props.correlation_id),
                             mandatory=True)
        else:
            ch.basic_publish("", props.reply_to, reply,
                             pika.BasicProperties(correlation_id=props.correlation_id))
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(BARE_QUEUE, functools.partial(on_request, False))
    ch.basic_consume(v1_queue, functools.partial(on_request, True))
    print("READY", flush=True)
    ch.start_consuming()


def _request_props(variant: str, reply_to: str, corr: str, user: str) -> dict:
    """The fields of one request's properties for ``variant``."""
    if variant == "bare":
        return {"reply_to": reply_to, "correlation_id": corr}
    off = set(variant.split("-")[1:])
    fields = {"content_type": "application/x-msgpack", "delivery_mode": 1,
              "headers": {"x-deadline": int(time.time() * 1000) + 600_000},
              "correlation_id": corr, "reply_to": reply_to, "expiration": "60000",
              "message_id": corr, "user_id": user}
    for feature, names in (("headers", ["headers"]), ("user_id", ["user_id"]),
                           ("expiration", ["expiration"]), ("message_id", ["message_id"]),
                           ("extra", ["content_type", "delivery_mode"])):
        if feature in off:
            for name in names:
                del fields[name]
    return fields


def client(variant: str, calls: int) -> dict:
    """``calls`` sequential echo calls as ``variant``; calls/s and latency percentiles."""
    _check_variant(variant)
    conn = pika.BlockingConnection(pika.URLParameters(benchlib.AMQP_URL))
    ch = conn.channel()
    replies: dict[str, bytes] = {}

    def on_reply(_ch, _method, props, body):
        replies[props.correlation_id] = body

    user = pika.URLParameters(benchlib.AMQP_URL).credentials.username
    if variant == "bare":
        reply_to = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_consume(reply_to, on_reply, auto_ack=True)
        exchange, key, mandatory = "", BARE_QUEUE, False
        body = msgpack.packb({"method": "echo", "args": [42]})
    else:
        off = set(variant.split("-")[1:])
        reply_to = topology.reply_queue_name(user)
        ch.queue_declare(reply_to, arguments={
            "x-expires": Settings.load().reply_queue_expires_ms})
        ch.basic_consume(reply_to, on_reply, auto_ack=True, exclusive=True)
        exchange, key = (("", _v1_queue()) if "exchange" in off
                         else (topology.REQUEST_EXCHANGE, SERVICE))
        mandatory = "mandatory" not in off
        body = msgpack.packb({"v": topology.PROTOCOL_VERSION, "method": "echo", "args": [42]})
    prefix = uuid.uuid4().hex[:20]
    total = WARMUP + calls
    # Encoded before timing: the same per-call client work whatever the fields.
    prepared = []
    for i in range(total):
        corr = f"{prefix}{i:x}"
        props = pika.BasicProperties(**_request_props(variant, reply_to, corr, user))
        prepared.append((corr, EncodedProperties(props.encode())))
    latencies = []
    started = 0.0
    for i, (corr, props) in enumerate(prepared):
        if i == WARMUP:
            started = time.perf_counter()
        t0 = time.perf_counter()
        ch.basic_publish(exchange, key, body, props, mandatory=mandatory)
        while corr not in replies:
            conn.process_data_events(time_limit=None)
        msgpack.unpackb(replies.pop(corr))
        if i >= WARMUP:
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    if variant != "bare":
        ch.queue_delete(reply_to)
    conn.close()
    latencies.sort()
    return {"variant": variant, "calls_per_s": calls / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def _reset(admin) -> None:
    admin.queue_delete(BARE_QUEUE)
    admin.queue_delete(_v1_queue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--calls", type=int, default=2500, help="timed calls per measurement")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"v1 minus features, comma-separated (features: {', '.join(FEATURES)})")
    ap.add_argument("role", nargs="*", help=argparse.SUPPRESS)  # server | client VARIANT
    opts = ap.parse_args()
    if opts.role[:1] == ["server"]:
        return serve()
    if opts.role[:1] == ["client"]:
        print(json.dumps(client(opts.role[1], opts.calls)))
        return
    variants = ["bare", "v1"] + [v for v in opts.variants.split(",") if v and v != "v1"]
    for variant in variants:  # fail before starting anything
        _check_variant(variant)
    benchlib._with_admin(_reset)
    server = benchlib.Child(__file__, "server", [])
    rows: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        if server.recv_line().strip() != "READY":
            raise SystemExit("the wire_cost server did not start")
        for rnd in range(opts.rounds):
            for variant in (variants if rnd % 2 == 0 else variants[::-1]):
                out = subprocess.run([sys.executable, __file__, "--calls", str(opts.calls),
                                      "client", variant],
                                     capture_output=True, text=True, check=True)
                rows[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {rnd + 1}/{opts.rounds}: " + "  ".join(
                f"{v} {rows[v][-1]['calls_per_s']:.0f}" for v in variants), file=sys.stderr)
    finally:
        server.stop()
        benchlib._with_admin(_reset)

    print(f"\nRaw pika on both ends, {opts.calls} sequential echo calls per measurement, "
          f"{opts.rounds} interleaved rounds; medians\n")
    print("| variant | calls/s | p50 ms | p99 ms | ratio to bare (median per round) |")
    print("|---|---:|---:|---:|---:|")
    summary = {}
    for variant, results in rows.items():
        ratios = [r["calls_per_s"] / b["calls_per_s"]
                  for r, b in zip(results, rows["bare"], strict=True)]
        summary[variant] = {
            "calls_per_s": statistics.median(r["calls_per_s"] for r in results),
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "ratio_to_bare": statistics.median(ratios),
            "ratios": ratios}
        s = summary[variant]
        print(f"| {variant} | {s['calls_per_s']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
              f"{s['ratio_to_bare']:.3f} |")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(HERE, "results", f"wire-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"date": stamp, "rounds": opts.rounds, "calls": opts.calls,
                   "results": rows, "summary": summary}, f, indent=1)
    print(f"\nJSON: {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
