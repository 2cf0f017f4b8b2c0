"""Where a sequential call's time goes: CPU per call in client, server and broker.

Starts one server process (diracmq's Worker or the raw pika loop), makes ``--calls``
sequential calls from this process with a diracmq or a raw pika client, and reports
per call: wall time, this client's CPU, the server process's CPU and the broker's CPU
(summed over all threads from ``/proc/<pid>/task/*/schedstat``, nanosecond resolution).

Client and server can be mixed (``--client raw --server diracmq``), which splits our
overhead between the two sides; ``--matrix`` runs the four pairs ``--repeat`` times,
interleaved, each client in a fresh interpreter (ours changes pika's send path and the
malloc thresholds process-wide, which must not carry over to a raw client).
``--cprofile`` prints the client's cProfile (the calling thread); for the worker's
threads use py-spy on the server pid printed on stderr, with ``--hold``.

Run:  .venv/bin/python bench/profile_call.py --matrix --repeat 3 --calls 3000
      .venv/bin/python bench/profile_call.py --impl diracmq --reply direct --cprofile
"""
import argparse
import cProfile
import itertools
import json
import os
import pstats
import statistics
import subprocess
import sys
import time

import msgpack
import pika

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import diracmq_rpc  # noqa: E402
import raw_pika_rpc  # noqa: E402
from diracmq.broker import topology  # noqa: E402
from procstat import broker_pid, cpu_ns, ctx_switches  # noqa: E402

IMPLS = ("raw", "diracmq")
REPLY = {"named": {"raw": "exclusive", "diracmq": "queue"},
         "direct": {"raw": "direct", "diracmq": "direct"}}


class RawV1Client(raw_pika_rpc.Client):
    """The raw pika client, speaking our protocol v1 to our worker (adds ``"v": 1``).

    Our worker replies only to the caller's own reply destination (docs/security.md):
    Direct Reply-to, or a queue named ``dirac.reply.<user>.…`` with a ``user_id`` the
    broker checked; so in "exclusive" mode this client names its queue that way.
    """

    USER = "guest"

    def __init__(self, reply="direct", *args, **kwargs):
        super().__init__("direct", *args, **kwargs)
        if reply != "direct":
            self.ch.basic_cancel(self.ch.consumer_tags[0])
            self.reply_to = self.ch.queue_declare(
                topology.reply_queue_name(self.USER), exclusive=True).method.queue
            self.ch.basic_consume(self.reply_to, self._on_reply, auto_ack=True)

    def send(self, value, method=None):
        corr = str(next(self.ids))
        self.ch.basic_publish("", self.queue,
                              msgpack.packb({"v": 1, "method": method or self.method,
                                             "args": [value]}),
                              pika.BasicProperties(reply_to=self.reply_to, correlation_id=corr,
                                                   user_id=self.USER))
        return lambda: self._wait(corr)


def measure(server_impl, client_impl, reply, payload, calls, cprofile=False, hold=0.0):
    """One server process, ``calls`` sequential calls from here; a dict of figures."""
    our_queue = diracmq_rpc.queue_name()
    server_queue = raw_pika_rpc.QUEUE if server_impl == "raw" else our_queue
    value = benchlib.PAYLOADS[payload]

    def reset(admin):
        for queue in (raw_pika_rpc.QUEUE, our_queue):
            admin.queue_delete(queue)  # a stale one may have other arguments

    benchlib._with_admin(reset)
    script = "raw_pika_rpc.py" if server_impl == "raw" else "diracmq_rpc.py"
    server = benchlib.Child(os.path.join(HERE, script), "server", [])
    client = None
    try:
        assert server.recv_line().strip() == "READY"
        print(f"{server_impl} server pid {server.proc.pid}", file=sys.stderr)
        if server_impl == "raw" and client_impl == "diracmq":
            def bind(admin):  # our client publishes to dirac.rpc with the service as key
                admin.exchange_declare("dirac.rpc", exchange_type="direct", durable=True)
                admin.queue_bind(raw_pika_rpc.QUEUE, "dirac.rpc", routing_key=diracmq_rpc.SERVICE)
            benchlib._with_admin(bind)
        mode = REPLY[reply][client_impl]
        if client_impl == "diracmq":
            client = diracmq_rpc.Client(mode)
        elif server_impl == "raw":
            client = raw_pika_rpc.Client(mode, server_queue)
        else:
            client = RawV1Client(mode, server_queue)
        for _ in range(300):
            client.call(value)
        broker = broker_pid(pika.URLParameters(benchlib.AMQP_URL).port)
        prof = cProfile.Profile() if cprofile else None
        s0, b0 = cpu_ns(server.proc.pid), broker and cpu_ns(broker)
        sw0, cw0 = ctx_switches(server.proc.pid), ctx_switches(os.getpid())
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        if prof:
            prof.enable()
        for _ in range(calls):
            client.call(value)
        if prof:
            prof.disable()
        t1, c1 = time.perf_counter_ns(), time.process_time_ns()
        s1, b1 = cpu_ns(server.proc.pid), broker and cpu_ns(broker)
        sw1, cw1 = ctx_switches(server.proc.pid), ctx_switches(os.getpid())
        end = time.monotonic() + hold
        while time.monotonic() < end:
            client.call(value)
    finally:
        if client is not None:
            client.close()
        server.stop()
        benchlib._with_admin(reset)
    def per(ns):
        return ns / calls / 1000
    return {"server": server_impl, "client": client_impl, "reply": mode, "payload": payload,
            "calls_per_s": calls / (t1 - t0) * 1e9, "wall_us": per(t1 - t0),
            "client_cpu_us": per(c1 - c0), "server_cpu_us": per(s1 - s0),
            "broker_cpu_us": per(b1 - b0) if broker else None,
            "client_wakeups": (cw1 - cw0) / calls, "server_wakeups": (sw1 - sw0) / calls,
            "profile": prof}


def show(res):
    print(f"client {res['client']} -> server {res['server']} ({res['reply']}, {res['payload']}): "
          f"{res['calls_per_s']:.0f} calls/s")
    print(f"  wall per call      {res['wall_us']:7.1f} µs")
    note = "  (cProfile on: inflated)" if res["profile"] else ""
    print(f"  client CPU/call    {res['client_cpu_us']:7.1f} µs{note}")
    print(f"  server CPU/call    {res['server_cpu_us']:7.1f} µs")
    if res["broker_cpu_us"] is not None:
        print(f"  broker CPU/call    {res['broker_cpu_us']:7.1f} µs")
    print(f"  thread wake-ups per call: client {res['client_wakeups']:.2f}, "
          f"server {res['server_wakeups']:.2f}")


def measure_apart(server_impl, client_impl, opts):
    """:func:`measure` in a fresh interpreter: what our client changes process-wide (pika's
    send path, broker/gather.py; malloc thresholds, broker/allocator.py) must not carry
    over to a raw pika client measured after it."""
    out = subprocess.run([sys.executable, __file__, "--client", client_impl, "--server",
                          server_impl, "--reply", opts.reply, "--payload", opts.payload,
                          "--calls", str(opts.calls), "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def matrix(opts):
    pairs = list(itertools.product(IMPLS, IMPLS))  # (client, server)
    rows = {pair: [] for pair in pairs}
    for i in range(opts.repeat):
        for client_impl, server_impl in (pairs if i % 2 == 0 else pairs[::-1]):
            res = measure_apart(server_impl, client_impl, opts)
            rows[client_impl, server_impl].append(res)
            print(f"  {client_impl:8s}-> {server_impl:8s} {res['calls_per_s']:6.0f} calls/s",
                  file=sys.stderr)
    def med(rs, k):
        return statistics.median(r[k] for r in rs if r[k] is not None)
    base = med(rows["raw", "raw"], "calls_per_s")
    print(f"\n{opts.reply} reply, {opts.payload} payload, {opts.calls} sequential calls, "
          f"median of {opts.repeat} interleaved runs; CPU per call in µs\n")
    print("| client -> server | calls/s | ratio to raw->raw | wall µs | client CPU | "
          "server CPU | broker CPU | client wake-ups | server wake-ups |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (client_impl, server_impl), rs in rows.items():
        print(f"| {client_impl} -> {server_impl} | {med(rs, 'calls_per_s'):.0f} | "
              f"{med(rs, 'calls_per_s') / base:.2f} | {med(rs, 'wall_us'):.0f} | "
              f"{med(rs, 'client_cpu_us'):.0f} | {med(rs, 'server_cpu_us'):.0f} | "
              f"{med(rs, 'broker_cpu_us'):.0f} | {med(rs, 'client_wakeups'):.2f} | "
              f"{med(rs, 'server_wakeups'):.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", choices=IMPLS, default="diracmq", help="client and server")
    ap.add_argument("--client", choices=IMPLS, help="override --impl for the client")
    ap.add_argument("--server", choices=IMPLS, help="override --impl for the server")
    ap.add_argument("--reply", choices=REPLY, default="named",
                    help="named: our queue / raw exclusive queue; direct: Direct Reply-to")
    ap.add_argument("--payload", choices=benchlib.PAYLOADS, default="small")
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--matrix", action="store_true", help="all four client/server pairs")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each pair with --matrix")
    ap.add_argument("--cprofile", action="store_true", help="cProfile the client's calls")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    ap.add_argument("--hold", type=float, default=0,
                    help="seconds to keep calling after the measurement (time to attach py-spy)")
    opts = ap.parse_args()
    if opts.matrix:
        return matrix(opts)
    res = measure(opts.server or opts.impl, opts.client or opts.impl, opts.reply, opts.payload,
                  opts.calls, opts.cprofile, opts.hold)
    if opts.json:
        print(json.dumps({k: v for k, v in res.items() if k != "profile"}))
        return
    show(res)
    if res["profile"]:
        stats = pstats.Stats(res["profile"])
        if os.environ.get("PROFILE_DUMP"):
            stats.dump_stats(os.environ["PROFILE_DUMP"])
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
